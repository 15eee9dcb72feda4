import { FirnError } from '@firn/core';
import type { TcbStatus } from '../types.ts';

/** Signed collateral JSON (TCB info, QE identity) larger than this is refused; real ones are < 64 KiB. */
export const MAX_COLLATERAL_JSON = 1024 * 1024;
/** No TCB info or identity lists more levels than this. */
export const MAX_TCB_LEVELS = 512;

/** TCB level statuses Intel's TCB info and identities may carry; anything else fails closed. */
export const INTEL_TCB_STATUSES: readonly TcbStatus[] = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
];

/** Hex digit values by character code (0..127), -1 for anything else. */
const HEX_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = 10 + i;
    t[0x61 + i] = 10 + i;
  }
  return t;
})();

/** Hex strings up to this many characters are decoded here; longer ones by Node's decoder. */
const SHORT_HEX = 256;

/**
 * The bytes of a hex string (either case, even length), or undefined when any character is not a
 * hex digit. Same verdict as /^[0-9a-fA-F]*$/ without a separate scan. Short strings (the fields
 * of TCB info and QE identity: FMSPC, PCE ID, MRSIGNER, masks) are decoded by a table, every
 * character checked (decision 1520: Node's decoder costs more to call than to run on 32 bytes).
 * Longer ones: the text must be ASCII (so no character can alias a digit) and Node's decoder,
 * which stops at the first pair holding a non-digit, must decode all of it.
 */
export function hexBytes(s: string): Uint8Array | undefined {
  const n = s.length;
  if (n % 2 !== 0) return undefined;
  if (n <= SHORT_HEX) {
    const out = new Uint8Array(n >>> 1);
    for (let i = 0, j = 0; i < n; i += 2, j++) {
      const a = s.charCodeAt(i);
      const b = s.charCodeAt(i + 1);
      const hi = a < 128 ? HEX_VALUE[a]! : -1;
      const lo = b < 128 ? HEX_VALUE[b]! : -1;
      if ((hi | lo) < 0) return undefined;
      out[j] = (hi << 4) | lo;
    }
    return out;
  }
  if (Buffer.byteLength(s, 'utf8') !== n) return undefined;
  const b = Buffer.from(s, 'hex');
  return b.length * 2 === n ? new Uint8Array(b) : undefined;
}

export function collateralError(message: string): FirnError {
  return new FirnError('E_EVIDENCE_COLLATERAL', message);
}

/**
 * Field readers over untrusted JSON: each names the field in its error. The object's own name
 * may be given as a function, built only when an error needs it (levels are parsed by the
 * hundred, and their names would otherwise cost more than the checks).
 */
export class JsonFields {
  private name: string | (() => string);
  constructor(
    readonly o: Record<string, unknown>,
    what: string | (() => string),
  ) {
    this.name = what;
  }

  /** The object's name in errors, e.g. `tcbInfo.tcbLevels[3].tcb`. */
  get what(): string {
    if (typeof this.name !== 'string') this.name = this.name();
    return this.name;
  }

  static of(v: unknown, what: string | (() => string)): JsonFields {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw collateralError(`${typeof what === 'string' ? what : what()} must be an object`);
    return new JsonFields(v as Record<string, unknown>, what);
  }
  has(k: string): boolean {
    return Object.hasOwn(this.o, k) && this.o[k] !== undefined;
  }
  str(k: string): string {
    const v = this.o[k];
    if (typeof v !== 'string' || v.length > 4096) throw collateralError(`${this.what}.${k} must be a string`);
    return v;
  }
  int(k: string, max = 0xffffffff): number {
    const v = this.o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
      throw collateralError(`${this.what}.${k} must be an integer in 0..${max}`);
    return v;
  }
  hex(k: string, len: number): Uint8Array {
    const s = this.str(k);
    const b = s.length === len * 2 ? hexBytes(s) : undefined;
    if (b === undefined) throw collateralError(`${this.what}.${k} must be ${len} bytes of hex`);
    return b;
  }
  date(k: string): number {
    const s = this.str(k);
    const t = isoUtcSeconds(s);
    if (t === undefined) throw collateralError(`${this.what}.${k} must be an ISO-8601 UTC time`);
    if (Number.isNaN(t)) throw collateralError(`${this.what}.${k} is not a valid time`);
    return t;
  }
  arr(k: string, max = MAX_TCB_LEVELS): unknown[] {
    const v = this.o[k];
    if (!Array.isArray(v) || v.length > max)
      throw collateralError(`${this.what}.${k} must be a list of at most ${max}`);
    return v;
  }
  obj(k: string): JsonFields {
    return JsonFields.of(this.o[k], () => `${this.what}.${k}`);
  }
  status(k: string): TcbStatus {
    const s = this.str(k);
    if (!INTEL_TCB_STATUSES.includes(s as TcbStatus))
      throw collateralError(`${this.what}.${k}: unknown TCB status ${s}`);
    return s as TcbStatus;
  }
  advisories(k: string): string[] {
    if (!this.has(k)) return [];
    const v = this.arr(k, 1024);
    if (!v.every((x) => typeof x === 'string' && x.length <= 64))
      throw collateralError(`${this.what}.${k} must be strings`);
    return v as string[];
  }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Two ASCII digits of `s` at `i` as a number, or -1 if either is not one. */
function digits2(s: string, i: number): number {
  const h = s.charCodeAt(i) - 0x30;
  const l = s.charCodeAt(i + 1) - 0x30;
  return h >= 0 && h <= 9 && l >= 0 && l <= 9 ? h * 10 + l : -1;
}

/**
 * An ISO-8601 UTC time as collateral writes it (`YYYY-MM-DDThh:mm:ss[.fraction]Z`), as unix
 * seconds (the fraction dropped): undefined when the text does not have that form, NaN when it
 * has it but names no real instant (February 30, hour 24, second 60). Read character by
 * character; the verdicts are those of the pattern ISO_UTC followed by Date.parse and a read-back
 * of the first 19 characters (the check it replaces, decision 1520; differential test in
 * collateralJson.test.ts). Years below 100 take that path itself (Date.UTC maps them to 19xx).
 */
export function isoUtcSeconds(s: string): number | undefined {
  const n = s.length;
  if (n < 20 || s.charCodeAt(n - 1) !== 0x5a) return undefined;
  if (s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':') return undefined;
  const y1 = digits2(s, 0);
  const y2 = digits2(s, 2);
  const mo = digits2(s, 5);
  const d = digits2(s, 8);
  const h = digits2(s, 11);
  const mi = digits2(s, 14);
  const sec = digits2(s, 17);
  if ((y1 | y2 | mo | d | h | mi | sec) < 0) return undefined;
  if (n > 20) {
    if (s[19] !== '.' || n === 21) return undefined;
    for (let i = 20; i < n - 1; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return undefined;
    }
  }
  const year = y1 * 100 + y2;
  if (year < 100) {
    const t = Date.parse(s);
    if (!Number.isFinite(t) || new Date(t).toISOString().slice(0, 19) !== s.slice(0, 19)) return Number.NaN;
    return Math.floor(t / 1000);
  }
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = mo === 2 ? (leap ? 29 : 28) : mo === 4 || mo === 6 || mo === 9 || mo === 11 ? 30 : 31;
  if (mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || sec > 59) return Number.NaN;
  return Date.UTC(year, mo - 1, d, h, mi, sec) / 1000;
}

/** The check isoUtcSeconds replaces (kept for its differential test): pattern, Date.parse, read-back. */
export function isoUtcSecondsByPattern(s: string): number | undefined {
  if (!ISO_UTC.test(s)) return undefined;
  const t = Date.parse(s);
  if (!Number.isFinite(t) || new Date(t).toISOString().slice(0, 19) !== s.slice(0, 19)) return Number.NaN;
  return Math.floor(t / 1000);
}

/** JSON.parse of signed collateral text, size-capped, failing with a typed error. */
export function parseCollateralJson(text: string, what: string): unknown {
  if (typeof text !== 'string') throw collateralError(`${what} must be JSON text`);
  if (text.length > MAX_COLLATERAL_JSON)
    throw collateralError(`${what} is over ${MAX_COLLATERAL_JSON} characters`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FirnError('E_EVIDENCE_COLLATERAL', `${what} is not valid JSON`, { cause: e });
  }
}
