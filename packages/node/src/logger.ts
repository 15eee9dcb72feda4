import { pino, stdTimeFunctions } from 'pino';

/**
 * Structured JSON-lines logger (pino). Callers pass only non-secret fields: stable error codes,
 * ids, sizes, statuses; never a key, a plaintext, a ciphertext or an error message that may be
 * derived from a requester's plaintext (docs/decisions/0853-host-sees-error-codes-only.md).
 * As a second line of defence, fields named like secrets are replaced with "[redacted]" (REDACTED_PATHS).
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
  return wrap(Object.keys(base).length === 0 ? p : p.child(bigintsAsStrings(base)));
}

function wrap(p: pino.Logger): Logger {
  const at =
    (level: Level) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      // `level`, `msg` and `time` are the line's own keys: a re-emitted line (the enclave's logs)
      // keeps a differing level as `sourceLevel` instead of writing the key twice.
      const { level: source, msg: _m, time: _t, ...rest } = fields;
      p[level](source === undefined || source === level ? rest : { ...rest, sourceLevel: source }, msg);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => wrap(p.child(bigintsAsStrings(fields))),
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
