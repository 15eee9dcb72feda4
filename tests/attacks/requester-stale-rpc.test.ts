import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RpcMessage, rewritingRpcProxy, rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob, urlOf } from '../helpers/tinyInferenceJob.ts';

// Promise (decision 1460, brief): a lying or lagging RPC cannot make the requester wait forever;
// its waits are bounded. Here the requester's RPC stops following the chain (a node that stopped
// syncing: its head, its state and its receipts stay where they were; it still takes transactions)
// while the node holding the job is lost. In the RPC's view the claim never lapses (its latest
// block's time never moves), so waitOutLostNode never reclaims and never gives up: it sends a
// nudge transaction (real gas, mined on the real chain) per poll, each waiting up to viem's
// receipt timeout, for ever. Chain time as the SDK counts it (origin plus own elapsed time) passed
// the lapse long ago: a bound there (give up, typed, when the chain it reads does not advance)
// would end the wait. The node is made unreachable (event stream included) once the RPC freezes,
// so only the chain can end the wait: with the same script and an honest RPC (no freeze), runJob
// reclaims and throws NodeLostError about 65 s in, 4 transactions sent.

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

describe('a requester whose RPC stops following the chain while the node holding its job is lost', () => {
  it('does not wait (and nudge) for ever: runJob settles within a bound after the claim lapsed', async () => {
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
          // The node is lost for good, and the requester's RPC stops following the chain here.
          process.kill(enclavePid, 'SIGSTOP');
          stopped = true;
          frozen = (await rpcCall(net.anvil.rpcUrl, 'eth_blockNumber', [])) as string;
        }
        throw new TypeError('fetch failed (test: the answer was lost)');
      }
      // The node is unreachable from here on (its event stream too): only the chain can end the wait.
      if (stopped && /\/v1\/jobs\//.test(urlOf(url)))
        throw new TypeError('fetch failed (test: node unreachable)');
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
      // A typed give-up naming the RPC and the job, so its escrow can be reclaimed later.
      expect(outcome).toBe('threw E_CHAIN');
      expect(error?.message).toContain(proxy!.url);
      expect(error?.message).toContain(jobId!);
      expect(error?.message).toMatch(/is not advancing/);
    } finally {
      globalThis.fetch = realFetch;
      frozen = undefined;
      proxy?.server.close();
      process.kill(enclavePid, 'SIGCONT');
    }
  }, 200_000);
});
