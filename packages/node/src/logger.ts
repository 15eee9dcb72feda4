import { redactUrlsIn } from '@firn/core';
import { pino, stdTimeFunctions } from 'pino';

/**
 * Structured JSON-lines logger (pino). Callers pass only non-secret fields: stable error codes,
 * ids, sizes, statuses; never a key, a plaintext, a ciphertext or an error message that may be
 * derived from a requester's plaintext (docs/decisions/0853-host-sees-error-codes-only.md).
 * As a second line of defence, fields named like secrets are replaced with "[redacted]" (REDACTED_PATHS),
 * and every string (the message, each field and each child binding, nested objects and arrays, an
 * Error's name and message) passes through redactUrlsIn: no caller can log an RPC URL's key,
 * password or query (viem writes the full URL into its error messages; decisions 1686, 1748).
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * Field names never written in clear, at the top level or one object down (pino `redact`): keys,
 * sealed blobs, plaintext and ciphertext, bodies, signatures and auth headers.
 */
export const REDACTED_PATHS: readonly string[] = [
  'privateKey',
  'operatorKey',
  'secret',
  'password',
  'sealedKeys',
  'sealedState',
  'plaintext',
  'ciphertext',
  'body',
  'signature',
  'authorization',
  'x-firn-signature',
  'x-firn-session-auth',
].flatMap((k) => [`["${k}"]`, `*["${k}"]`]);

/**
 * A logger writing one JSON object per line: `{level, time, msg, ...base, ...fields}` (level as a
 * name, time as ISO 8601). `opts.level` (default `FIRN_LOG_LEVEL`, else `info`) drops lower levels;
 * `opts.write` receives each line (default: process.stdout). BigInts are written as decimal strings.
 */
export function createLogger(
  base: Record<string, unknown> = {},
  opts: { level?: Level; write?: (line: string) => void } = {},
): Logger {
  const envLevel = process.env.FIRN_LOG_LEVEL as Level | undefined;
  const level =
    opts.level ?? (envLevel && ['debug', 'info', 'warn', 'error'].includes(envLevel) ? envLevel : 'info');
  const write = opts.write ?? ((line: string) => process.stdout.write(line));
  const p = pino(
    {
      level,
      base: null,
      messageKey: 'msg',
      timestamp: stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      formatters: {
        level: (label) => ({ level: label }),
        log: (o) => bigintsAsStrings(o),
      },
    },
    { write },
  );
  return wrap(Object.keys(base).length === 0 ? p : p.child(bigintsAsStrings(sanitiseFields(base))));
}

function wrap(p: pino.Logger): Logger {
  const at =
    (level: Level) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      // `level`, `msg` and `time` are the line's own keys: a re-emitted line (the enclave's logs)
      // keeps a differing level as `sourceLevel` instead of writing the key twice.
      const { level: source, msg: _m, time: _t, ...rest } = fields;
      const clean = sanitiseFields(rest);
      p[level](
        source === undefined || source === level
          ? clean
          : { ...clean, sourceLevel: sanitiseValue(source, 0) },
        redactUrlsIn(msg),
      );
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => wrap(p.child(bigintsAsStrings(sanitiseFields(fields)))),
  };
}

function bigintsAsStrings(o: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(o))
    if (typeof v === 'bigint') {
      out ??= { ...o };
      out[k] = v.toString();
    }
  return out ?? o;
}

/** How deep sanitiseValue walks nested fields; anything deeper is written as "[depth]". */
const MAX_SANITISE_DEPTH = 6;

/**
 * A log line's fields with every string through redactUrlsIn (decision 1748). Walks plain objects
 * and arrays up to MAX_SANITISE_DEPTH; an Error becomes `{type, message}` (its stack and viem's
 * detail blocks repeat the URL and are not logged). Other values (numbers, bigints, booleans,
 * null) are kept as they are.
 */
export function sanitiseFields(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = sanitiseValue(v, 0);
  return out;
}

function sanitiseValue(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return redactUrlsIn(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_SANITISE_DEPTH) return '[depth]';
  if (v instanceof Error) return { type: redactUrlsIn(v.name), message: redactUrlsIn(v.message) };
  if (Array.isArray(v)) return v.map((x) => sanitiseValue(x, depth + 1));
  if (v instanceof Uint8Array) return v;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return redactUrlsIn(String(v));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = sanitiseValue(x, depth + 1);
  return out;
}
