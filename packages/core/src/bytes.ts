import { InvalidInputError, ParseError, TooLargeError } from './errors.ts';

export type Hex = `0x${string}`;

const HEX_RE = /^(0x)?([0-9a-fA-F]{2})*$/;

/** Decode hex with or without 0x. Rejects odd length and non-hex characters. */
export function hexToBytes(hex: string, what = 'hex'): Uint8Array {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) throw new InvalidInputError(`${what} is not valid hex`);
  return Uint8Array.from(Buffer.from(hex.startsWith('0x') ? hex.slice(2) : hex, 'hex'));
}

export function bytesToHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidInputError('u32 out of range');
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

export function u64be(n: bigint | number): Uint8Array {
  const v = BigInt(n);
  if (v < 0n || v >= 1n << 64n) throw new InvalidInputError('u64 out of range');
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return b;
}

/** Assert a byte array, optionally of an exact length. */
export function assertBytes(value: unknown, what: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidInputError(`${what} must be bytes`);
  if (length !== undefined && value.length !== length)
    throw new InvalidInputError(`${what} must be ${length} bytes, got ${value.length}`);
  return value;
}

/** Assert hex of an exact byte length and return it as bytes. */
export function hexBytes(value: unknown, what: string, length?: number, maxLength = 1 << 20): Uint8Array {
  if (typeof value !== 'string') throw new InvalidInputError(`${what} must be a hex string`);
  if (value.length > maxLength * 2 + 2) throw new TooLargeError(what, value.length, maxLength * 2 + 2);
  const b = hexToBytes(value, what);
  if (length !== undefined && b.length !== length)
    throw new InvalidInputError(`${what} must be ${length} bytes, got ${b.length}`);
  return b;
}

/**
 * A bounds-checked little-endian/big-endian reader for untrusted binary formats. Every read past
 * the end is a ParseError carrying the offset; nothing is allocated from a length field without
 * the caller's cap.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset: number;
  readonly what: string;

  constructor(bytes: Uint8Array, what = 'input', offset = 0) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
    this.what = what;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(n: number, field: string): void {
    if (!Number.isInteger(n) || n < 0 || this.offset + n > this.bytes.length) {
      throw new ParseError(`${this.what}: truncated reading ${field}`, {
        details: { offset: this.offset, need: n, have: this.bytes.length - this.offset },
      });
    }
  }

  u8(field = 'u8'): number {
    this.need(1, field);
    return this.view.getUint8(this.offset++);
  }
  u16le(field = 'u16'): number {
    this.need(2, field);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }
  u16be(field = 'u16'): number {
    this.need(2, field);
    const v = this.view.getUint16(this.offset, false);
    this.offset += 2;
    return v;
  }
  u32le(field = 'u32'): number {
    this.need(4, field);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  u32be(field = 'u32'): number {
    this.need(4, field);
    const v = this.view.getUint32(this.offset, false);
    this.offset += 4;
    return v;
  }
  u64le(field = 'u64'): bigint {
    this.need(8, field);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }
  /** A view (no copy) of the next n bytes; n must already be capped by the caller. */
  take(n: number, field = 'bytes'): Uint8Array {
    this.need(n, field);
    const v = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }
  /** Read a length-prefixed field whose length must be at most max. */
  takeCapped(n: number, max: number, field: string): Uint8Array {
    if (n > max)
      throw new ParseError(`${this.what}: ${field} length ${n} over cap ${max}`, {
        details: { offset: this.offset },
      });
    return this.take(n, field);
  }
  end(field = 'end'): void {
    if (this.offset !== this.bytes.length)
      throw new ParseError(`${this.what}: ${this.bytes.length - this.offset} trailing bytes after ${field}`);
  }
}
