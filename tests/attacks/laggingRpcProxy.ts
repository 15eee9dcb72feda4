import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One JSON-RPC request as the proxy sees it (params may be rewritten in place). */
export interface RpcMessage {
  id?: unknown;
  method?: string;
  params?: unknown[];
}

/**
 * A JSON-RPC proxy in front of `target` (anvil) for attacks by an RPC that lags. Each request of a
 * call or batch goes through `rewrite`, which may change its params in place and return nothing
 * (the request is forwarded), or return the answer itself (not forwarded). Answers keep the
 * request's batch shape; a failed forward answers 502. Listens on 127.0.0.1, a system-chosen port.
 */
export async function rewritingRpcProxy(
  target: string,
  rewrite: (m: RpcMessage) => unknown | undefined,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RpcMessage | RpcMessage[];
      const list = Array.isArray(parsed) ? parsed : [parsed];
      const answers = list.map(async (m) => {
        const own = rewrite(m);
        if (own !== undefined) return own;
        const r = await fetch(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(m),
        });
        return (await r.json()) as unknown;
      });
      Promise.all(answers)
        .then((out) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(Array.isArray(parsed) ? out : out[0]));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

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
