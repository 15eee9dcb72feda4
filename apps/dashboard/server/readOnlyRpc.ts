import { FirnError } from '@firn/core';

/**
 * JSON-RPC methods the dashboard's proxy forwards: reads only. Anything that sends a transaction,
 * signs, touches accounts, filters held server-side, or drives a dev node (anvil_*, evm_*, hardhat_*,
 * debug_*) is refused, so the dashboard never exposes a write path to the chain, whatever RPC it fronts.
 */
export const READ_ONLY_RPC_METHODS: ReadonlySet<string> = new Set([
  'eth_chainId',
  'net_version',
  'eth_blockNumber',
  'eth_call',
  'eth_getLogs',
  'eth_getBlockByNumber',
  'eth_getBlockByHash',
  'eth_getTransactionByHash',
  'eth_getTransactionReceipt',
  'eth_getCode',
  'eth_getBalance',
]);

/** Largest JSON-RPC request body accepted from the page, bytes. */
export const MAX_RPC_REQUEST_BYTES = 64 * 1024;
/** Largest batch accepted from the page. */
export const MAX_RPC_BATCH = 100;

interface RpcCall {
  jsonrpc: '2.0';
  id: number | string | null;
  method: string;
  params?: unknown[];
}

/**
 * Parse and check a JSON-RPC request (single or batch) from the page. Returns the calls to forward;
 * throws E_TOO_LARGE (body or batch over the caps), E_PARSE (not JSON-RPC 2.0), E_FORBIDDEN (a method
 * outside READ_ONLY_RPC_METHODS; the whole request is refused, nothing is forwarded).
 */
export function checkReadOnlyRpcRequest(body: string): RpcCall[] {
  if (body.length > MAX_RPC_REQUEST_BYTES)
    throw new FirnError('E_TOO_LARGE', `JSON-RPC request over ${MAX_RPC_REQUEST_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new FirnError('E_PARSE', 'JSON-RPC request is not JSON');
  }
  const calls = Array.isArray(parsed) ? parsed : [parsed];
  if (calls.length === 0 || calls.length > MAX_RPC_BATCH)
    throw new FirnError('E_TOO_LARGE', `JSON-RPC batch must hold 1..${MAX_RPC_BATCH} calls`);
  for (const c of calls) {
    const call = c as Partial<RpcCall> | null;
    if (
      typeof call !== 'object' ||
      call === null ||
      call.jsonrpc !== '2.0' ||
      typeof call.method !== 'string'
    )
      throw new FirnError('E_PARSE', 'not a JSON-RPC 2.0 call');
    if (call.params !== undefined && !Array.isArray(call.params))
      throw new FirnError('E_PARSE', 'JSON-RPC params must be an array');
    if (!READ_ONLY_RPC_METHODS.has(call.method))
      throw new FirnError(
        'E_FORBIDDEN',
        `the dashboard forwards chain reads only; ${call.method.slice(0, 64)} is refused`,
      );
  }
  return calls as RpcCall[];
}
