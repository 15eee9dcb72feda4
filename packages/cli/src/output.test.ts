import {
  ContractFunctionExecutionError,
  HttpRequestError,
  InternalRpcError,
  LimitExceededRpcError,
  RpcRequestError,
  TimeoutError,
} from 'viem';
import { describe, expect, it } from 'vitest';
import { cliErrorBody, exitCodeOf, rpcFailureBody } from './output.ts';

// Decision 1749: what viem raises for an RPC that hangs, is rate limited, cannot be reached or
// refuses a call is named as such (exit 4), with the endpoint's URL redacted; a revert is not.
const URL_ = 'https://rpc.example/v2/Sk3yZQ9x7LmP4vRt2WnB8cYd';
const rpcError = (code: number, message: string) =>
  new RpcRequestError({ body: { method: 'eth_chainId' }, error: { code, message }, url: URL_ });

describe('cliErrorBody: RPC failures', () => {
  it('a request that timed out is E_TIMEOUT naming the endpoint (redacted), exit 4', () => {
    const e = new TimeoutError({ body: { method: 'eth_chainId' }, url: URL_ });
    const b = cliErrorBody(e);
    expect(b.code).toBe('E_TIMEOUT');
    expect(b.message).toContain(
      'the RPC endpoint https://rpc.example/v2/*** accepted the request but did not answer within 10 s (3 tries)',
    );
    expect(b.message).not.toContain('Sk3yZQ9x7LmP4vRt2WnB8cYd');
    expect(exitCodeOf(e)).toBe(4);
  });

  it('-32005, -32007, JSON-RPC 429 and HTTP 429 are E_RATE_LIMITED, exit 4, wrapped or not', () => {
    for (const e of [
      new LimitExceededRpcError(rpcError(-32005, 'daily request count exceeded')),
      rpcError(-32007, '10/second request limit reached'),
      rpcError(429, 'too many requests'),
      new HttpRequestError({ url: URL_, status: 429 }),
      new ContractFunctionExecutionError(new LimitExceededRpcError(rpcError(-32005, 'limit')), {
        abi: [],
        functionName: 'registry',
        contractAddress: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
      }),
    ]) {
      expect(cliErrorBody(e).code, e.name).toBe('E_RATE_LIMITED');
      expect(exitCodeOf(e)).toBe(4);
    }
  });

  it('an HTTP error is E_UNAVAILABLE; another JSON-RPC error E_CHAIN with its one line; exit 4', () => {
    expect(cliErrorBody(new HttpRequestError({ url: URL_, status: 502 })).code).toBe('E_UNAVAILABLE');
    const refused = new InternalRpcError(rpcError(-32603, 'header not found'));
    expect(cliErrorBody(refused)).toEqual({
      code: 'E_CHAIN',
      message: 'the RPC endpoint https://rpc.example/v2/*** refused the call: header not found',
    });
    expect(exitCodeOf(refused)).toBe(4);
  });

  it('a revert is not an RPC failure; the source is named when given', () => {
    expect(rpcFailureBody(rpcError(3, 'execution reverted: NotEligible()'))).toBeUndefined();
    expect(rpcFailureBody(new Error('something else'))).toBeUndefined();
    expect(rpcFailureBody(new HttpRequestError({ url: URL_ }), 'FIRN_RPC_URL')?.message).toContain(
      `the RPC endpoint ${URL_} (from FIRN_RPC_URL)`,
    );
  });
});
