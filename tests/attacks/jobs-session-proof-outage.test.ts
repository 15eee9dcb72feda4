import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { openInferenceSession } from '@firn/client';
import { createLogger, NodeDaemon } from '@firn/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { type RpcRelay, startRpcRelay, waitFor } from '../e2e/faultsRelay.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A warm inference session is served, then its chain RPC drops for a few seconds just as the
// session closes. Decision 1041 promises that a finished proof is kept (`proving`) before it is
// sent and sent with back-off until it is accepted or the claim lapses, so a short outage never
// costs the operator the payment. A session's proof is sent once: the outage makes the node fail
// the session and throw its proof away, and the requester's served answers are never paid for.
let net: TestNetwork;
let relay: RpcRelay;
let node: NodeDaemon;

beforeAll(async () => {
  net = await startTestNetwork({ challengeWindow: 5 });
  const { dataDir } = net;
  const { bundlePath, enclaveEnv } = net.node.opts;
  const port = Number(new URL(net.node.url).port);
  await net.node.jobs?.drain();
  await net.node.stop();
  relay = await startRpcRelay(net.anvil.rpcUrl);
  node = new NodeDaemon({
    dataDir,
    bundlePath,
    enclaveEnv,
    port,
    logger: createLogger({ component: 'node' }, { level: 'error', write: () => undefined }),
    chain: { rpcUrl: relay.url, deployment: net.deployment, operatorKey: net.operator.privateKey },
    scheduler: { chainCheckIntervalMs: 200, finalizeIntervalMs: 300, sessionIdleMs: 1500 },
  });
  await node.start();
}, 180_000);

afterAll(async () => {
  await node?.jobs?.drain(2000);
  await node?.stop();
  await relay?.close();
  await net?.stop();
});

describe('attack: a short chain outage when a warm session closes', () => {
  it('the session proof is kept and submitted when the chain is back', async () => {
    const model = tinyLinearModel({ inFeatures: 4, outFeatures: 2, seed: 4 });
    const session = await openInferenceSession({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      model: { bytes: model.bytes },
      escrow: 10n ** 15n,
    });
    await session.infer({ x: { type: 'float32', dims: [1, 4], data: new Float32Array(4) } });
    // The requester walks away; the RPC drops before the node's idle close.
    relay.down = true;
    await waitFor(
      'the idle close attempted',
      () => (node.jobs!.db.getSession(session.jobId)?.state !== 'open' ? true : undefined),
      15_000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    relay.down = false;
    const reader = createFirnClients(net.anvil.rpcUrl, net.requester.privateKey, net.deployment);
    const status = await waitFor(
      'the session proved on chain',
      async () => {
        const s = (await getJob(reader, session.jobId)).status;
        return s === JobStatus.Proved || s === JobStatus.Paid ? s : undefined;
      },
      20_000,
    ).catch(async () => JobStatus[(await getJob(reader, session.jobId)).status]);
    expect(
      [JobStatus.Proved, JobStatus.Paid],
      `on chain: ${String(status)}; node record: ${node.jobs!.jobs.get(session.jobId)?.status}`,
    ).toContain(status);
  }, 90_000);
});
