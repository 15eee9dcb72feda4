import { isFirnError, toErrorBody } from '@firn/core';

type Cause = { code?: unknown; path?: unknown; name?: unknown; url?: unknown; cause?: unknown };
type Body = ReturnType<typeof toErrorBody>;

/**
 * The error body a user can act on: a file-system error names its path, an unreachable RPC its URL,
 * a contract call that finds no contract the address; only an unknown error stays E_INTERNAL.
 */
export function cliErrorBody(e: unknown): Body {
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
      return { code, message: `${c.path}: ${what}` };
    }
    if (c.name === 'HttpRequestError' && typeof c.url === 'string')
      return { code: 'E_UNAVAILABLE', message: `cannot reach the RPC endpoint ${c.url} (is the URL right?)` };
    const call = c as { contractAddress?: unknown; functionName?: unknown };
    if (c.name === 'ContractFunctionExecutionError' && typeof call.contractAddress === 'string')
      return {
        code: 'E_INVALID_INPUT',
        message: `${call.contractAddress} did not answer ${String(call.functionName)}(): is it the right firn contract on this chain?`,
      };
  }
  return toErrorBody(e);
}

/** Print a command's failure: JSON `{"error": {...}}` with --json, else one line on stderr. */
export function printError(e: unknown, json: boolean): void {
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
