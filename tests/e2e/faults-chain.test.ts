import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createFirnClients, getJob, JobStatus, postJob } from '@firn/chain';
import { NodeApi, openInferenceSession, type RunJobOptions, runJob, sealInput } from '@firn/client';
import { bytesToHex, computeInputCommitment, type Hex, sharedPath, TEE_TYPES } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { createLogger, NodeDaemon } from '@firn/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

import { startRpcRelay, type RpcRelay, waitFor } from './faultsRelay.ts';
import {
  increaseTime,
  requesterOptions,
  requestScope,
  startTestNetwork,
  type TestNetwork,
} from './network.ts';

// The node under chain faults and a skewed clock: its RPC goes through a relay the test cuts, and
// the chain runs 30 minutes behind the host's clock for the whole file. What must hold: /healthz
// tells the chain, enclave and storage apart; no job is started while the chain is unreachable;
// a proof finished during an outage is kept and submitted when the chain is back; the node
// finalizes its own proved jobs; a retried submission is the same job; a full queue answers 429;
// the event stream replays with sequence numbers and an end marker; proofs carry chain time.
const SKEW = 1800;
const CHALLENGE_WINDOW = 30;
let net: TestNetwork;
let relay: RpcRelay;
let node: NodeDaemon;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const logs: string[] = [];
/** POST /v1/jobs requests this process sent (to replay one exactly). */
const submissions: { url: string; headers: Record<string, string>; body: string }[] = [];
const realFetch = globalThis.fetch;

const csv = readFileSync(sharedPath('datasets', 'banknote_authentication.csv'), 'utf8');
const enc = (s: string) => new TextEncoder().encode(s);

const rpc = (method: string, params: unknown[]) => rpcCall(net.anvil.rpcUrl, method, params);
const chainNow = async () =>
  Number(BigInt(((await rpc('eth_getBlockByNumber', ['latest', false])) as { timestamp: string }).timestamp));

beforeAll(async () => {
  globalThis.fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (init?.method === 'POST' && url.endsWith('/v1/jobs') && typeof init.body === 'string')
      submissions.push({ url, headers: { ...(init.headers as Record<string, string>) }, body: init.body });
    return realFetch(input, init);
  };
  net = await startTestNetwork({ challengeWindow: CHALLENGE_WINDOW });
  kem = await generateKemKeyPair();
  // The chain's clock runs SKEW seconds behind the host's from here on.
  await rpc('anvil_setTime', [Math.floor(Date.now() / 1000) - SKEW]);
  await rpc('evm_mine', []);
  // The test network's node is replaced by one with the same identity (data dir, platform,
  // image) whose RPC goes through the relay, with a small queue and quick background loops.
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
    logger: createLogger({ component: 'node' }, { level: 'debug', write: (l) => logs.push(l) }),
    chain: { rpcUrl: relay.url, deployment: net.deployment, operatorKey: net.operator.privateKey },
    scheduler: {
      maxConcurrentJobs: 1,
      maxQueuedJobs: 0,
      chainCheckIntervalMs: 200,
      finalizeIntervalMs: 300,
      sessionIdleMs: 1500,
    },
  });
  await node.start();
}, 180_000);

afterAll(async () => {
  globalThis.fetch = realFetch;
  await node?.jobs?.drain();
  await node?.stop();
  await relay?.close();
  await net?.stop();
});

const health = async () => {
  const r = await realFetch(`${node.url}/healthz`);
  return {
    status: r.status,
    body: (await r.json()) as Record<string, unknown> & { chain: { up: boolean; clockSkewSeconds?: number } },
  };
};

function trainingJob(epochs: number, extra: Partial<RunJobOptions> = {}): Promise<RunJobOptions> {
  return sealInput(enc(csv), 'text/csv', kem.publicKey).then((dataset) => ({
    ...requesterOptions(net, kem),
    kind: 'training',
    inputs: [{ role: 'dataset', sealed: dataset }],
    params: {
      task: 'classification',
      hidden: [32, 16],
      epochs,
      batchSize: 16,
      seed: 3,
      validationSplit: 0.2,
    },
    escrow: 10n ** 15n,
    ...extra,
  }));
}

/** A signed submission for a fresh job posted on chain over already stored inputs (it never decrypts). */
async function strangerSubmission(inputs: Hex[]) {
  const clients = createFirnClients(net.anvil.rpcUrl, net.requester.privateKey, net.deployment);
  const posted = await postJob(clients, {
    teeTypeMask: 1 << TEE_TYPES.simulated,
    allowedMeasurements: [],
    workloadHash: bytesToHex(randomBytes(32)),
    inputCommitment: computeInputCommitment(inputs),
    deadline: BigInt((await chainNow()) + 3600),
    claimTimeout: 900n,
    escrow: 10n ** 14n,
  });
  const body = { jobId: posted.jobId, enc: bytesToHex(randomBytes(32)), ciphertext: 'AAAA', inputs };
  const api = new NodeApi(node.url, 10_000, {
    requesterKey: net.requester.privateKey,
    scope: requestScope(net),
  });
  return {
    body,
    headers: { 'content-type': 'application/json', ...api.submissionHeaders('POST /v1/jobs', body) },
  };
}

/** Read a finished job's SSE stream to its end. */
async function events(jobId: Hex, lastEventId?: number) {
  const r = await realFetch(`${node.url}/v1/jobs/${jobId}/events`, {
    headers: lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  const blocks = text.split('\n\n').filter((b) => b.includes('event:'));
  const progress = blocks
    .filter((b) => b.includes('event: progress'))
    .map((b) => JSON.parse(b.split('data: ')[1]!) as { seq: number; message: string });
  const endBlock = blocks.find((b) => b.includes('event: end'));
  const end = endBlock
    ? (JSON.parse(endBlock.split('data: ')[1]!) as { status: string; events: number })
    : undefined;
  return { progress, end };
}

let provedJob: Hex | undefined;
let storedInputs: Hex[] = [];

describe('a node under chain faults, with its host clock 30 minutes ahead of the chain', () => {
  it('/healthz reports chain, enclave and storage separately, and 503 while the chain is down', async () => {
    const ok = await health();
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, enclave: 'up', storage: 'up', chain: { up: true } });
    // The node measured its clock against the chain.
    expect(ok.body.chain.clockSkewSeconds).toBeGreaterThan(SKEW - 30);
    relay.down = true;
    const down = await waitFor('a 503 health', async () => {
      const h = await health();
      return h.status === 503 ? h : undefined;
    });
    expect(down.body).toMatchObject({ ok: false, enclave: 'up', storage: 'up', chain: { up: false } });
    relay.down = false;
    await waitFor('a 200 health', async () => ((await health()).status === 200 ? true : undefined));
  }, 60_000);

  it('a proof finished during a chain outage is kept and submitted when the chain is back', async () => {
    let jobId: Hex | undefined;
    let cut = false;
    const opts = await trainingJob(15, {
      onPosted: (id) => {
        jobId = id;
      },
      onProgress: () => {
        // The outage starts while the job runs, after its claim.
        if (!cut) {
          cut = true;
          relay.down = true;
        }
      },
    });
    const run = runJob(opts);
    const proving = await waitFor(
      'the proof kept while the chain is down',
      () => (jobId && node.jobs!.jobs.get(jobId)?.status === 'proving' ? true : undefined),
      60_000,
    );
    expect(proving).toBe(true);
    // Submission is retried, not given up, while the outage lasts.
    await new Promise((r) => setTimeout(r, 2000));
    expect(node.jobs!.jobs.get(jobId!)?.status).toBe('proving');
    expect(logs.join('')).toContain('proof kept; submission waits for the chain');
    relay.down = false;
    const result = await run;
    expect(result.jobId).toBe(jobId);
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const onChain = await getJob(clients, jobId!);
    expect(onChain.status).toBe(JobStatus.Proved);
    // Proof times are chain time, not the host's clock (30 minutes ahead).
    const now = await chainNow();
    expect(Number(onChain.finishedAt)).toBeLessThanOrEqual(now + 5);
    expect(Number(onChain.startedAt)).toBeGreaterThanOrEqual(Number(onChain.claimedAt) - 5);
    expect(node.jobs!.jobs.get(jobId!)?.status).toBe('proved');
    provedJob = jobId;
    storedInputs = node.jobs!.jobs.get(jobId!)!.inputs;
  }, 120_000);

  it('an honest proof for a requester on chain time (a tight deadline) is accepted despite the skewed host clock', async () => {
    // The requester's clock agrees with the chain; its deadline (chain + 600 s) is already
    // behind the node's host clock (chain + 1800 s). Proof times and expiry on the host clock
    // would refuse the job (deadline passed, grant expired) or get the proof refused/disputed.
    const offset = Math.floor(Date.now() / 1000) - (await chainNow());
    let jobId: Hex | undefined;
    const result = await runJob(
      await trainingJob(2, {
        now: () => Math.floor(Date.now() / 1000) - offset,
        deadlineSeconds: 600,
        onPosted: (id) => {
          jobId = id;
        },
      }),
    );
    expect(result.jobId).toBe(jobId);
    const onChain = await getJob(createFirnClients(net.anvil.rpcUrl, undefined, net.deployment), jobId!);
    expect(onChain.status).toBe(JobStatus.Proved);
    expect(onChain.finishedAt).toBeLessThanOrEqual(onChain.deadline);
    expect(onChain.startedAt).toBeLessThanOrEqual(onChain.finishedAt);
  }, 120_000);

  it('the node finalizes its proved job after the challenge window by itself (operator paid)', async () => {
    await increaseTime(net.anvil.rpcUrl, CHALLENGE_WINDOW + 2);
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    await waitFor('finalize', async () =>
      (await getJob(clients, provedJob!)).status === JobStatus.Paid ? true : undefined,
    );
    await waitFor('the finalized record', () =>
      node.jobs!.jobs.get(provedJob!)?.status === 'finalized' ? true : undefined,
    );
    expect(node.jobs!.jobs.get(provedJob!)?.txs?.finalize).toMatch(/^0x[0-9a-f]{64}$/);
  }, 60_000);

  it('a retried submission of the same job answers its record and never runs it again', async () => {
    const sent = submissions.find((s) => s.body.includes(provedJob!.slice(2)));
    expect(sent).toBeDefined();
    const claimsBefore = logs.filter((l) => l.includes('job claimed') && l.includes(provedJob!)).length;
    const again = await realFetch(sent!.url, { method: 'POST', headers: sent!.headers, body: sent!.body });
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ jobId: provedJob, status: 'finalized' });
    // The same job id with another request is a conflict, not a second run.
    const other = JSON.parse(sent!.body) as { ciphertext: string };
    const changed = JSON.stringify({ ...other, ciphertext: `${other.ciphertext.slice(0, -4)}AAAA` });
    const api = new NodeApi(node.url, 10_000, {
      requesterKey: net.requester.privateKey,
      scope: requestScope(net),
    });
    const conflict = await realFetch(sent!.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...api.submissionHeaders('POST /v1/jobs', JSON.parse(changed) as Parameters<NodeApi['submitJob']>[0]),
      },
      body: changed,
    });
    expect(conflict.status).toBe(409);
    await new Promise((r) => setTimeout(r, 500));
    expect(logs.filter((l) => l.includes('job claimed') && l.includes(provedJob!)).length).toBe(claimsBefore);
  }, 30_000);

  it('the event stream has sequence numbers and an end marker naming the count, and resumes', async () => {
    const all = await events(provedJob!);
    expect(all.progress.length).toBeGreaterThan(2);
    expect(all.progress.map((e) => e.seq)).toEqual(all.progress.map((_e, i) => i));
    expect(all.end).toEqual({ status: 'proved', events: all.progress.length });
    const tail = await events(provedJob!, all.progress.length - 2);
    expect(tail.progress.map((e) => e.seq)).toEqual([all.progress.length - 1]);
    expect(tail.end?.events).toBe(all.progress.length);
  }, 30_000);

  it('an idle session is closed (and proved) by the node after its idle timeout, freeing its slot', async () => {
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
    // The requester walks away without closing: the node reclaims the slot by itself.
    await waitFor(
      'the idle session proved',
      () => (node.jobs!.jobs.get(session.jobId)?.status === 'proved' ? true : undefined),
      15_000,
    );
    expect(node.jobs!.db.getSession(session.jobId)?.state).toBe('closed');
    await expect(
      session.infer({ x: { type: 'float32', dims: [1, 4], data: new Float32Array(4) } }),
    ).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  }, 60_000);

  it('no job is started while the chain is unreachable (503), and a full queue answers 429 + Retry-After', async () => {
    const s1 = await strangerSubmission(storedInputs);
    relay.down = true;
    await waitFor('chain down', async () => ((await health()).body.chain.up ? undefined : true));
    const refused = await realFetch(`${node.url}/v1/jobs`, {
      method: 'POST',
      headers: s1.headers,
      body: JSON.stringify(s1.body),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('E_UNAVAILABLE');
    expect(node.jobs!.jobs.get(s1.body.jobId)).toBeUndefined();
    relay.down = false;
    await waitFor('chain up', async () => ((await health()).body.chain.up ? true : undefined));
    // One slot, no queue: while a training job runs, the next submission is turned away.
    let running: Hex | undefined;
    const run = runJob(
      await trainingJob(20, {
        onPosted: (id) => {
          running = id;
        },
      }),
    );
    await waitFor(
      'the job running',
      () => (running && node.jobs!.jobs.get(running)?.status === 'running' ? true : undefined),
      60_000,
    );
    const s2 = await strangerSubmission(storedInputs);
    const busy = await realFetch(`${node.url}/v1/jobs`, {
      method: 'POST',
      headers: s2.headers,
      body: JSON.stringify(s2.body),
    });
    expect(busy.status).toBe(429);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(node.jobs!.jobs.get(s2.body.jobId)).toBeUndefined();
    await run;
  }, 120_000);
});
