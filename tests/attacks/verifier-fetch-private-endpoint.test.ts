import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { firnRegistryAbi, getNode, NodeStatus } from '@firn/chain';
import { forbiddenAddressReason, type Hex, REFUSAL_CODES } from '@firn/core';
import { checkResultAvailable } from '@firn/verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NodeFacingChain,
  nodeFacingVerifier,
  registerNodeAt,
  serveHttp,
} from '../helpers/nodeFacingChain.ts';
import { startNodeFacingChain } from '../helpers/nodeFacingChain.ts';

// A registration whose endpoint is an address only the verifier's network reaches (here
// loopback; in production the cloud metadata service, a PCCS, the verifier's own RPC node). Every
// verifier POSTed there, and its vote told anyone which internal ports answer: refused when the
// port answered 2xx, no vote when it was closed. Now such an endpoint gets no request at all
// (docs/decisions/1832-node-facing-fetches.md): one whose URL names the address is refused for
// that reason, the same for every verifier; one whose name resolves to such an address gets no
// vote, like a name that does not resolve. A verifier of a devnet allows private endpoints.

let chain: NodeFacingChain;
let internal: Awaited<ReturnType<typeof serveHttp>>;
const hits: string[] = [];

beforeAll(async () => {
  chain = await startNodeFacingChain();
  // An internal JSON API the verifier's host can reach; it answers 200 to anything.
  internal = await serveHttp((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end('{"jsonrpc":"2.0","error":{"code":-32600}}');
  });
}, 120_000);
afterAll(async () => {
  await internal?.close();
  await chain?.anvil.stop();
});

async function refusalCodesOf(enclaveId: Hex): Promise<number[]> {
  const logs = await chain.gov.public.getContractEvents({
    address: chain.deployment.registry,
    abi: firnRegistryAbi,
    eventName: 'NodeRefused',
    fromBlock: chain.deployment.deployBlock,
    args: { enclaveId },
  });
  return logs.map((l) => Number((l.args as { reasonCode?: number }).reasonCode));
}

// This machine's own name resolves (hosts file) to loopback or private addresses on most machines.
const ownName = hostname();
const ownAddresses = await lookup(ownName, { all: true }).catch(() => []);
const ownNameForbidden =
  ownAddresses.length > 0 && ownAddresses.every((a) => forbiddenAddressReason(a.address) !== undefined);

describe('a registration whose endpoint is an internal address', () => {
  it('is refused for that reason (E_ENDPOINT_FORBIDDEN), and the internal service gets no request', async () => {
    hits.length = 0;
    const { enclaveId, event } = await registerNodeAt(chain, internal.url);
    const { daemon, warnings } = nodeFacingVerifier(chain);
    await daemon.onRegistration(event);
    expect({ hits, refused: daemon.stats.refused }).toEqual({ hits: [], refused: 1 });
    expect(await refusalCodesOf(enclaveId)).toEqual([REFUSAL_CODES.E_ENDPOINT_FORBIDDEN]);
    expect(warnings.join('\n')).toContain(`${internal.url}/v1/attestation: the host 127.0.0.1 is loopback`);
  });

  it('a closed internal port gets the same refusal: the vote says nothing about the port', async () => {
    hits.length = 0;
    const closed = await serveHttp(() => undefined);
    const url = closed.url;
    await closed.close();
    const { enclaveId, event } = await registerNodeAt(chain, url);
    const { daemon } = nodeFacingVerifier(chain);
    await daemon.onRegistration(event);
    expect(daemon.stats.refused).toBe(1);
    expect(await refusalCodesOf(enclaveId)).toEqual([REFUSAL_CODES.E_ENDPOINT_FORBIDDEN]);
  });

  it.skipIf(!ownNameForbidden)(
    `a name that resolves to one (this host's name, ${ownName}) gets no request and no vote (needs it to resolve to loopback or private addresses only)`,
    async () => {
      hits.length = 0;
      const { enclaveId, event } = await registerNodeAt(chain, `http://${ownName}:${internal.port}`);
      const { daemon, warnings } = nodeFacingVerifier(chain);
      await daemon.onRegistration(event);
      expect(hits).toEqual([]);
      expect(daemon.stats).toMatchObject({ approved: 0, refused: 0, skipped: 1 });
      expect((await getNode(chain.gov, enclaveId)).status).toBe(NodeStatus.Pending);
      expect(await refusalCodesOf(enclaveId)).toEqual([]);
      expect(warnings.join('\n')).toContain(`resolved to ${ownAddresses[0]!.address}`);
    },
  );

  it("a proved job's result there is unavailable without a request", async () => {
    hits.length = 0;
    const { enclaveId } = await registerNodeAt(chain, internal.url);
    const r = await checkResultAvailable(chain.gov, {
      jobId: `0x${'01'.repeat(32)}`,
      enclaveId,
      outputCommitment: `0x${'02'.repeat(32)}`,
    });
    expect(r.available).toBe(false);
    expect(r.reason).toContain('E_ENDPOINT_FORBIDDEN');
    expect(r.reason).toContain('loopback');
    expect(hits).toEqual([]);
  });

  it('control: a devnet verifier (allowPrivateEndpoints) asks the same endpoint', async () => {
    hits.length = 0;
    const { enclaveId, event } = await registerNodeAt(chain, internal.url);
    const { daemon } = nodeFacingVerifier(chain, { allowPrivateEndpoints: true });
    await daemon.onRegistration(event);
    await checkResultAvailable(
      chain.gov,
      { jobId: `0x${'05'.repeat(32)}`, enclaveId, outputCommitment: `0x${'02'.repeat(32)}` },
      { allowPrivateEndpoints: true },
    );
    expect(hits).toEqual(['POST /v1/attestation', `GET /v1/jobs/0x${'05'.repeat(32)}/result`]);
  });
});
