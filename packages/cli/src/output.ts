import { isFirnError, toErrorBody } from '@firn/core';

/** Print a command's failure: JSON `{"error": {...}}` with --json, else one line on stderr. */
export function printError(e: unknown, json: boolean): void {
  const body = toErrorBody(e);
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
