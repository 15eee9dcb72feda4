import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RpcMessage, rewritingRpcProxy } from '../../packages/chain/test/rpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Promise (decision 1460, brief): the requester never reclaims late, and its waits are bounded
// (escrow stays recoverable). Here the node claims the job, its answer to the submission is lost
// and its enclave then hangs for good (SIGSTOP) while its host stays up. The RPC is honest (the
// proxy below forwards everything; `frozen` is never set). waitOutLostNode sees the job Claimed and
// follows the node's event stream, which the HOST keeps alive with a keep-alive every 15 s: the
// stream never idles out (idleMs 60 s) and never ends, so the SDK never returns to look at the
// chain. The claim lapses after 60 s, but the requester neither reclaims nor gives up: runJob waits
// for ever (a host can do the same on purpose to a job it claimed). The wait on the node's stream
// must be bounded by the claim's lapse on the requester's chain clock.

let net: TestNetwork;
const realFetch = globalThis.fetch;
let proxy: Awaited<ReturnType<typeof rewritingRpcProxy>> | undefined;
let frozen: string | undefined;
const TAGS = new Set(['latest', 'pending', 'safe', 'finalized']);

/** The stale RPC's view: everything as of block `frozen`, transactions still taken. */
function stale(m: RpcMessage): unknown {
  if (frozen === undefined) return undefined;
  const answer = (result: unknown) => ({ jsonrpc: '2.0', id: m.id, result });
  const p = m.params ?? [];
  switch (m.method) {
    case 'eth_blockNumber':
      return answer(frozen);
    case 'eth_getTransactionReceipt':
      return answer(null);
    case 'eth_getBlockByNumber':
      if (typeof p[0] === 'string' && TAGS.has(p[0])) p[0] = frozen;
      return undefined;
    case 'eth_call':
    case 'eth_estimateGas':
    case 'eth_getBalance':
    case 'eth_getCode':
    case 'eth_getStorageAt':
      if (typeof p[p.length - 1] === 'string' && TAGS.has(p[p.length - 1] as string))
        p[p.length - 1] = frozen;
      else if (p.length === 1) p.push(frozen);
      return undefined;
    default:
      return undefined;
  }
}

beforeAll(async () => {
  net = await startTestNetwork({ challengeWindow: 60 });
  proxy = await rewritingRpcProxy(net.anvil.rpcUrl, stale);
}, 180_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  proxy?.server.close();
  await net?.stop();
});

describe('a requester whose node claimed the job and then hung, its host still up', () => {
  it('reclaims or gives up within a bound after the claim lapsed, however long the host keeps the event stream alive', async () => {
    const kem = await generateKemKeyPair();
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const enclavePid = net.node.supervisor.pid;
    if (enclavePid === undefined) throw new Error('the node has no enclave process');
    let jobId: Hex | undefined;
    let stopped = false;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (init?.method === 'POST' && /\/v1\/jobs$/.test(urlOf(url))) {
        if (!stopped && jobId !== undefined) {
          await realFetch(url, init);
          for (let i = 0; i < 500; i++) {
            if ((await getJob(reader, jobId)).status !== JobStatus.Open) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          // The node's enclave hangs for good here; its host stays up.
          process.kill(enclavePid, 'SIGSTOP');
          stopped = true;
        }
        throw new TypeError('fetch failed (test: the answer was lost)');
      }
      return realFetch(url, init);
    }) as typeof fetch;
    const requester = net.requester.address as Hex;
    try {
      const opts = await tinyInferenceJob(net, kem, [1, 2, 3], {
        rpcUrl: proxy!.url,
        maxNodes: 1,
        pollMs: 300,
        nodeTimeoutMs: 2_000,
        claimTimeoutSeconds: 60, // the node's minimum
        onPosted: (id: Hex) => {
          jobId = id;
        },
      });
      const nonceBefore = await reader.public.getTransactionCount({ address: requester });
      let error: (Error & { code?: string; jobId?: Hex; reclaimed?: boolean }) | undefined;
      const run = runJob(opts).then(
        () => 'returned',
        (e: unknown) => {
          error = e as typeof error;
          return `threw ${error?.code ?? error?.message}`;
        },
      );
      // The claim lapses 60 s after it was made; give the SDK 60 s more to notice and settle.
      const outcome = await Promise.race([
        run,
        new Promise<string>((r) => setTimeout(() => r('still waiting'), 125_000).unref()),
      ]);
      const sent = (await reader.public.getTransactionCount({ address: requester })) - nonceBefore;
      expect({ outcome, stopped }).toMatchObject({ stopped: true });
      expect(outcome).not.toBe('still waiting');
      // The post, a reclaim perhaps, a nudge or two: not one transaction per poll.
      expect(sent).toBeLessThanOrEqual(4);
      // Back to the chain: the lapsed claim was reclaimed (escrow returned), the job named.
      expect(error?.name).toBe('NodeLostError');
      expect(error).toMatchObject({ jobId, reclaimed: true });
      expect((await getJob(reader, jobId!)).status).toBe(JobStatus.Reclaimed);
    } finally {
      globalThis.fetch = realFetch;
      frozen = undefined;
      proxy?.server.close();
      process.kill(enclavePid, 'SIGCONT');
    }
  }, 200_000);
});
