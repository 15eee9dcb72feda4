import { rewritingRpcProxy } from '../../packages/chain/test/rpcProxy.ts';

/**
 * A proxy whose log index lags: while `state.lagTo` is set, eth_getLogs answers only up to block
 * `lagTo` (a range starting after it gets no logs, without an error, as load-balanced providers do).
 */
export async function laggingLogsProxy(target: string) {
  const state = { lagTo: undefined as bigint | undefined };
  const p = await rewritingRpcProxy(target, (m) => {
    const f = m.params?.[0] as { fromBlock?: string; toBlock?: string } | undefined;
    if (state.lagTo === undefined || m.method !== 'eth_getLogs' || f === undefined) return undefined;
    if (f.fromBlock?.startsWith('0x') && BigInt(f.fromBlock) > state.lagTo)
      return { jsonrpc: '2.0', id: m.id, result: [] };
    f.toBlock = `0x${state.lagTo.toString(16)}`;
    return undefined;
  });
  return { ...p, state };
}

/**
 * A proxy whose eth_call backend lags: while `state.lagTo` is set, an eth_call at "latest" (or
 * "pending", or no tag) is answered at block `lagTo`, and one at a later block number fails as a
 * lagging node would ("header not found"). Every other method reaches the up-to-date `target`.
 */
export async function laggingCallProxy(target: string) {
  const state = { lagTo: undefined as bigint | undefined };
  const p = await rewritingRpcProxy(target, (m) => {
    if (state.lagTo === undefined || m.method !== 'eth_call' || !Array.isArray(m.params)) return undefined;
    const tag = m.params[1];
    if (tag === undefined || tag === 'latest' || tag === 'pending')
      m.params[1] = `0x${state.lagTo.toString(16)}`;
    else if (typeof tag === 'string' && tag.startsWith('0x') && BigInt(tag) > state.lagTo)
      return { jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'header not found' } };
    return undefined;
  });
  return { ...p, state };
}
