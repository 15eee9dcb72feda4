import { RPC_RETRY_COUNT, RPC_TIMEOUT_MS } from '@firn/chain';
import { isFirnError, sharedPath, toErrorBody } from '@firn/core';
import { redactUrlsIn } from './rpcUrl.ts';

type Cause = { code?: unknown; path?: unknown; name?: unknown; url?: unknown; cause?: unknown };
type Body = ReturnType<typeof toErrorBody>;

/**
 * The error body a user can act on: a file-system error names its path, an unreachable RPC its URL,
 * a contract call that finds no contract the address; only an unknown error stays E_INTERNAL.
 */
export function cliErrorBody(e: unknown): Body {
  // No RPC URL's key, password or query reaches the user's terminal or logs (decision 1686).
  const body = errorBodyOf(e);
  return { ...body, message: redactUrlsIn(body.message) };
}

function errorBodyOf(e: unknown): Body {
  // An RPC that does not answer (a stopped devnet, a wrong port), hangs or refuses for its quota is
  // named as such, before a chain error that only says "HTTP request failed" or a contract call
  // that blames the address (decision 1749).
  if (!isFirnError(e) || e.code === 'E_CHAIN') {
    const rpc = rpcFailureBody(e);
    if (rpc !== undefined) return rpc;
  }
  if (isFirnError(e)) return toErrorBody(e);
  const errno: Record<string, [Body['code'], string]> = {
    ENOENT: ['E_NOT_FOUND', 'no such file or directory'],
    EEXIST: ['E_CONFLICT', 'already exists; not overwriting it'],
    EACCES: ['E_FORBIDDEN', 'permission denied'],
    EPERM: ['E_FORBIDDEN', 'permission denied'],
    EISDIR: ['E_INVALID_INPUT', 'is a directory'],
    ENOTDIR: ['E_INVALID_INPUT', 'not a directory (or a parent of it is not)'],
  };
  for (let c = e as Cause | undefined, i = 0; c && i < 8; c = c.cause as Cause | undefined, i++) {
    if (typeof c.path === 'string' && typeof c.code === 'string') {
      const [code, what] = errno[c.code] ?? ['E_INVALID_INPUT', c.code];
      let shared: string | undefined;
      try {
        shared = sharedPath();
      } catch {}
      const hint =
        shared !== undefined && c.path.startsWith(shared) && c.code === 'ENOENT'
          ? ` (the shared/ folder with the datasets and test vectors is not at ${shared}: put it beside the checkout or set FIRN_SHARED_DIR)`
          : '';
      // An output is written through `<out>.firn-partial.<…>.tmp`: name the path the user typed,
      // whatever the error (decision 1747).
      const partial = /\.firn-partial\.[0-9a-f]{8}\.\d+\.[0-9a-f]{12}\.tmp$/.exec(c.path);
      if (partial) {
        const out = c.path.slice(0, partial.index);
        return {
          code,
          message:
            c.code === 'ENOENT'
              ? `${out}: its folder does not exist`
              : `${out}: ${what} (nothing was written)`,
        };
      }
      return { code, message: `${c.path}: ${what}${hint}` };
    }
    // A server that cannot bind its address (taken by another program, or not this host's).
    const bind = c as { syscall?: unknown; address?: unknown; port?: unknown; hostname?: unknown };
    if (bind.syscall === 'listen' && typeof c.code === 'string')
      return {
        code: c.code === 'EADDRINUSE' ? 'E_CONFLICT' : 'E_INVALID_INPUT',
        message: `cannot listen on ${String(bind.address)}${bind.port === undefined ? '' : `:${String(bind.port)}`} (--host/--port): ${c.code}`,
      };
    if (bind.syscall === 'getaddrinfo' && typeof bind.hostname === 'string')
      return {
        code: 'E_INVALID_INPUT',
        message: `the host name ${bind.hostname} does not resolve (${String(c.code)}): check --host or the URL`,
      };
    const call = c as { contractAddress?: unknown; functionName?: unknown };
    if (c.name === 'ContractFunctionExecutionError' && typeof call.contractAddress === 'string')
      return {
        code: 'E_INVALID_INPUT',
        message: `${call.contractAddress} did not answer ${String(call.functionName)}(): is it the right firn contract on this chain?`,
      };
  }
  return toErrorBody(e);
}

/** JSON-RPC error codes and HTTP statuses of a rate-limited RPC (EIP-1474 -32005; QuickNode -32007). */
const RATE_LIMIT_CODES: readonly number[] = [-32005, -32007, 429];

/**
 * What a failed RPC call means for the user (decision 1749), walking `e`'s cause chain (8 links),
 * or undefined when no RPC failure is in it:
 * - viem TimeoutError: E_TIMEOUT, the endpoint accepted the request and did not answer within
 *   RPC_TIMEOUT_MS over every try (a stopped devnet, a hung provider);
 * - JSON-RPC -32005/-32007/429 or HTTP 429: E_RATE_LIMITED (a hosted RPC's quota);
 * - HttpRequestError (no connection, an HTTP error status): E_UNAVAILABLE;
 * - any other JSON-RPC error of an error that is not already a FirnError: E_CHAIN with viem's
 *   one-line shortMessage (a revert is left to the caller's own message).
 * Each names the endpoint's URL (the caller redacts it) and, when given, where the URL came from
 * (`source`: `--rpc`, `FIRN_RPC_URL`, a file's rpcUrl); each is exit 4.
 */
export function rpcFailureBody(e: unknown, source?: string): Body | undefined {
  type Link = Cause & { status?: unknown; shortMessage?: unknown; details?: unknown };
  let url: string | undefined;
  let kind: 'timeout' | 'limited' | 'http' | 'rpc' | undefined;
  let detail = '';
  for (let c = e as Link | undefined, i = 0; c && typeof c === 'object' && i < 8; c = c.cause as Link, i++) {
    if (url === undefined && typeof c.url === 'string') url = c.url;
    if (kind !== undefined) continue;
    const name = typeof c.name === 'string' ? c.name : '';
    if (name === 'TimeoutError') kind = 'timeout';
    else if (
      (typeof c.code === 'number' && RATE_LIMIT_CODES.includes(c.code)) ||
      (name === 'HttpRequestError' && c.status === 429)
    )
      kind = 'limited';
    else if (name === 'HttpRequestError') kind = 'http';
    else if (
      name === 'RpcRequestError' &&
      c.code !== 3 &&
      !/revert/i.test(String(c.details ?? '')) &&
      !isFirnError(e)
    ) {
      kind = 'rpc';
      detail = typeof c.details === 'string' ? c.details.slice(0, 200) : '';
    }
  }
  if (kind === undefined || url === undefined) return undefined;
  const where = `the RPC endpoint ${url}${source === undefined ? '' : ` (from ${source})`}`;
  if (kind === 'timeout')
    return {
      code: 'E_TIMEOUT',
      message: `${where} accepted the request but did not answer within ${RPC_TIMEOUT_MS / 1000} s (${RPC_RETRY_COUNT + 1} tries): is that chain or devnet running (not stopped with Ctrl-Z)? Try again later or use another RPC`,
    };
  if (kind === 'limited')
    return {
      code: 'E_RATE_LIMITED',
      message: `${where} refuses requests: its rate limit or quota is spent. Try again later or use another RPC`,
    };
  if (kind === 'http')
    return {
      code: 'E_UNAVAILABLE',
      message: `cannot reach ${where} (is the URL right, and is that chain or devnet running?)`,
    };
  return { code: 'E_CHAIN', message: `${where} refused the call${detail ? `: ${detail}` : ''}` };
}

/**
 * The exit code of a failed command, by error code (the README's "Exit codes" table):
 * 1 the job failed or an unexpected error; 2 a proof, attestation or policy check refused;
 * 3 fix the command (a flag, a path, a file's content, an output that exists);
 * 4 something is unreachable or busy (node, RPC, chain, timeout): try again later.
 */
export function exitCodeOf(e: unknown): number {
  const code: string = cliErrorBody(e).code;
  if (
    code === 'E_PROOF_INVALID' ||
    code === 'E_POLICY_REJECTED' ||
    code === 'E_CHAIN_DISAGREEMENT' ||
    code === 'E_IMAGE_MISMATCH' ||
    code === 'E_DECRYPT' ||
    code.startsWith('E_EVIDENCE_') ||
    code.startsWith('E_ARTIFACT_') ||
    code.startsWith('E_GRANT_')
  )
    return 2;
  if (
    [
      'E_INVALID_INPUT',
      'E_NOT_FOUND',
      'E_PARSE',
      'E_TOO_LARGE',
      'E_CONFLICT',
      'E_FORBIDDEN',
      'E_UNAUTHENTICATED',
      'E_UNSUPPORTED',
      'E_MODEL_INVALID',
      'E_DATA_INVALID',
      'E_INPUT_INVALID',
      'E_JOB_INVALID',
      'E_QUOTA_EXCEEDED',
    ].includes(code)
  )
    return 3;
  if (
    [
      'E_UNAVAILABLE',
      'E_TIMEOUT',
      'E_RATE_LIMITED',
      'E_CHAIN',
      'E_ENCLAVE_UNAVAILABLE',
      'E_RESULT_UNAVAILABLE',
      'E_STORAGE_FULL',
    ].includes(code)
  )
    return 4;
  return 1;
}

/** The last error printError reported (main maps it to its exit code). */
export let lastPrintedError: unknown;

/** Print a command's failure: JSON `{"error": {...}}` with --json, else one line on stderr. */
export function printError(e: unknown, json: boolean): void {
  lastPrintedError = e;
  const body = cliErrorBody(e);
  if (!isFirnError(e) && process.env.FIRN_DEBUG === '1') process.stderr.write(`${(e as Error)?.stack}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: body })}\n`);
  else process.stderr.write(`error: ${body.code}: ${body.message}\n`);
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`);
}

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(w[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function short(hex: string, n = 10): string {
  return hex.length <= 2 * n + 2 ? hex : `${hex.slice(0, n + 2)}…${hex.slice(-n + 2)}`;
}
