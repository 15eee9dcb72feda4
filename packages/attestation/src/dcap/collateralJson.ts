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

/**
 * The bytes of a hex string (either case, even length), or undefined when any character is not a
 * hex digit. Same verdict as /^[0-9a-fA-F]*$/ without a separate scan: the text must be ASCII
 * (so no character can alias a digit) and Node's decoder, which stops at the first pair holding a
 * non-digit, must decode all of it.
 */
export function hexBytes(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || Buffer.byteLength(s, 'utf8') !== s.length) return undefined;
  const b = Buffer.from(s, 'hex');
  return b.length * 2 === s.length ? new Uint8Array(b) : undefined;
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
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(s))
      throw collateralError(`${this.what}.${k} must be an ISO-8601 UTC time`);
    const t = Date.parse(s);
    // Date.parse rolls February 30 or hour 24 over into another instant: a real one reads back.
    if (!Number.isFinite(t) || new Date(t).toISOString().slice(0, 19) !== s.slice(0, 19))
      throw collateralError(`${this.what}.${k} is not a valid time`);
    return Math.floor(t / 1000);
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
