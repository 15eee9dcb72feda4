import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Address, Hex } from 'viem';
import type { AnvilInstance } from '../src/anvil.ts';
import type { FirnClients } from '../src/clients.ts';
import type { FirnDeployment } from '../src/types.ts';

/** One JSON-RPC request as the proxy sees it (params may be rewritten in place). */
export interface RpcMessage {
  id?: unknown;
  method?: string;
  params?: unknown[];
}

/**
 * Test-only: a JSON-RPC proxy in front of `target` (anvil), for tests that watch or bend what a
 * client asks the chain. Each request of a call or batch goes through `rewrite`, which may record
 * it, change its params in place and return nothing (the request is forwarded), or return the
 * answer itself (not forwarded). Answers keep the request's batch shape; a body that is not JSON
 * answers 400 and a failed forward 502. Listens on 127.0.0.1, a system-chosen port.
 */
export async function rewritingRpcProxy(
  target: string,
  rewrite: (m: RpcMessage) => unknown | undefined,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let parsed: RpcMessage | RpcMessage[];
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RpcMessage | RpcMessage[];
      } catch {
        res.writeHead(400);
        res.end();
        return;
      }
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

/** One request a recording proxy forwarded: its method and params (`[]` when it had none). */
export interface RecordedCall {
  method: string;
  params: unknown[];
}

/**
 * Test-only: a proxy in front of `target` that forwards every request unchanged and records it in
 * `calls`, in arrival order (each request of a batch on its own). Clear with `calls.length = 0`.
 */
export async function recordingRpcProxy(
  target: string,
): Promise<{ url: string; server: Server; calls: RecordedCall[] }> {
  const calls: RecordedCall[] = [];
  const p = await rewritingRpcProxy(target, (m) => {
    calls.push({ method: m.method ?? '?', params: m.params ?? [] });
    return undefined;
  });
  return { ...p, calls };
}

/** Test-only: one JSON-RPC call straight to `rpcUrl`; its `result` (undefined on an error answer). */
export async function rpcCall(rpcUrl: string, method: string, params: unknown[]): Promise<unknown> {
  const r = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await r.json()) as { result?: unknown }).result;
}

/**
 * Test-only: a deployment naming no firn contract (placeholder addresses 0x…01-04), for tests that
 * need clients on `anvil` only for its chain id.
 */
export function placeholderDeployment(anvil: AnvilInstance): FirnDeployment {
  return {
    chainId: anvil.chainId,
    registry: '0x0000000000000000000000000000000000000001',
    verifierSet: '0x0000000000000000000000000000000000000002',
    jobMarket: '0x0000000000000000000000000000000000000003',
    dataLedger: '0x0000000000000000000000000000000000000004',
    deployBlock: 0n,
  };
}

/**
 * Test-only: deploys raw `initCode` from the clients' wallet and waits for it; the new contract's
 * address. `legacy` sends a type-0 transaction at the node's gas price (for chains without base fees).
 */
export async function deployRaw(c: FirnClients, initCode: Hex, legacy = false): Promise<Address> {
  const w = c.wallet!;
  const hash = legacy
    ? await w.sendTransaction({
        data: initCode,
        account: w.account!,
        chain: null,
        type: 'legacy',
        gasPrice: await c.public.getGasPrice(),
      })
    : await w.sendTransaction({ data: initCode, account: w.account!, chain: null });
  const receipt = await c.public.waitForTransactionReceipt({ hash });
  return receipt.contractAddress!;
}

/**
 * Test-only: another sender holding the same key takes `nonce`: a 1-wei transfer from the clients'
 * account to itself at `nonce`, with fees (20 gwei tip, 200 gwei cap) above any write's pending at
 * that nonce, so it replaces it. The transaction hash; nothing is mined here.
 */
export async function sendReplacementAt(c: FirnClients, nonce: number): Promise<Hex> {
  const w = c.wallet!;
  return w.sendTransaction({
    to: w.account!.address,
    value: 1n,
    nonce,
    account: w.account!,
    chain: null,
    gas: 21_000n,
    maxPriorityFeePerGas: 20_000_000_000n,
    maxFeePerGas: 200_000_000_000n,
  });
}
