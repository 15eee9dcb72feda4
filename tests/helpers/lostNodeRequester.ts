import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { type RpcMessage, rewritingRpcProxy, rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob, urlOf } from './tinyInferenceJob.ts';

/**
 * A full test network (one node, challenge window 60 s) whose requester reads the chain through a
 * proxy that can freeze (`LostNodeNetwork.run`), for the attacks in which the node holding a job is
 * lost and runJob must still settle within a bound (decision 1460):
 * tests/attacks/requester-frozen-enclave-stream.test.ts and requester-stale-rpc.test.ts.
 */
export interface LostNodeNetwork {
  net: TestNetwork;
  /** The requester's RPC: the proxy in front of anvil. */
  rpcUrl: string;
  /** Run one job whose node is lost once it claimed it (see LostNodeAttack); resolves when settled or after 125 s. */
  run: (attack: LostNodeAttack) => Promise<LostNodeOutcome>;
  stop: () => Promise<void>;
}

/** What happens once the node claimed the job and the answer to the submission was lost. */
export interface LostNodeAttack {
  /**
   * The requester's RPC stops following the chain (a node that stopped syncing): head, state and
   * receipts stay as of that block; transactions are still taken.
   */
  freezeRpc: boolean;
  /** The node's job API (its event stream included) is unreachable from then on. */
  nodeUnreachable: boolean;
}

export interface LostNodeOutcome {
  /** 'returned', 'threw <code or message>', or 'still waiting' after 125 s. */
  outcome: string;
  error: (Error & { code?: string; jobId?: Hex; reclaimed?: boolean }) | undefined;
  /** Whether the node was lost (its enclave SIGSTOPped after it claimed the job). */
  stopped: boolean;
  /** Transactions the requester sent from just after the job's inputs were prepared. */
  sent: number;
  jobId: Hex | undefined;
}

const TAGS = new Set(['latest', 'pending', 'safe', 'finalized']);

/** Start the network and the requester's proxy; `stop` ends both. */
export async function startLostNodeNetwork(): Promise<LostNodeNetwork> {
  const net = await startTestNetwork({ challengeWindow: 60 });
  let frozen: string | undefined;
  /** The stale RPC's view: everything as of block `frozen`, transactions still taken. */
  const stale = (m: RpcMessage): unknown => {
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
  };
  const proxy = await rewritingRpcProxy(net.anvil.rpcUrl, stale);
  const realFetch = globalThis.fetch;

  const run = async (attack: LostNodeAttack): Promise<LostNodeOutcome> => {
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
          // The node's enclave hangs for good here (its host stays up), and with freezeRpc the
          // requester's RPC stops following the chain.
          process.kill(enclavePid, 'SIGSTOP');
          stopped = true;
          if (attack.freezeRpc) frozen = (await rpcCall(net.anvil.rpcUrl, 'eth_blockNumber', [])) as string;
        }
        throw new TypeError('fetch failed (test: the answer was lost)');
      }
      if (attack.nodeUnreachable && stopped && /\/v1\/jobs\//.test(urlOf(url)))
        throw new TypeError('fetch failed (test: node unreachable)');
      return realFetch(url, init);
    }) as typeof fetch;
    const requester = net.requester.address as Hex;
    try {
      const opts = await tinyInferenceJob(net, kem, [1, 2, 3], {
        rpcUrl: proxy.url,
        maxNodes: 1,
        pollMs: 300,
        nodeTimeoutMs: 2_000,
        claimTimeoutSeconds: 60, // the node's minimum
        onPosted: (id: Hex) => {
          jobId = id;
        },
      });
      const nonceBefore = await reader.public.getTransactionCount({ address: requester });
      let error: LostNodeOutcome['error'];
      const settled = runJob(opts).then(
        () => 'returned',
        (e: unknown) => {
          error = e as typeof error;
          return `threw ${error?.code ?? error?.message}`;
        },
      );
      // The claim lapses 60 s after it was made; give the SDK 60 s more to notice and settle.
      const outcome = await Promise.race([
        settled,
        new Promise<string>((r) => setTimeout(() => r('still waiting'), 125_000).unref()),
      ]);
      const sent = (await reader.public.getTransactionCount({ address: requester })) - nonceBefore;
      return { outcome, error, stopped, sent, jobId };
    } finally {
      globalThis.fetch = realFetch;
      frozen = undefined;
      proxy.server.close();
      process.kill(enclavePid, 'SIGCONT');
    }
  };

  return {
    net,
    rpcUrl: proxy.url,
    run,
    stop: async () => {
      globalThis.fetch = realFetch;
      proxy.server.close();
      await net.stop();
    },
  };
}
