import { type ErrorCode, FirnError, TooLargeError } from '@firn/core';
import { isDecodeVerdict } from './decodeVerdict.ts';

/** The safetensors dtypes firn reads and writes. */
export type SafeDtype = 'F32' | 'F64' | 'I32' | 'I64' | 'U8';

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
}

export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

export interface SafetensorsCaps {
  maxBytes?: number;
  /** The JSON header; the format's reference reader caps it at 100 MB, firn far lower. */
  maxHeaderBytes?: number;
  maxTensors?: number;
  maxRank?: number;
  /** Which error code a malformed file raises (E_MODEL_INVALID for weights, E_DATA_INVALID for data). */
  errorCode?: ErrorCode;
}

const DEFAULTS = {
  maxBytes: 4 * 1024 ** 3,
  maxHeaderBytes: 16 * 1024 * 1024,
  maxTensors: 10_000,
  maxRank: 8,
  errorCode: 'E_PARSE' as ErrorCode,
};

const SIZES: Record<SafeDtype, number> = { F32: 4, F64: 8, I32: 4, I64: 8, U8: 1 };

function alloc(dtype: SafeDtype, n: number): SafeTensor['data'] {
  switch (dtype) {
    case 'F32':
      return new Float32Array(n);
    case 'F64':
      return new Float64Array(n);
    case 'I32':
      return new Int32Array(n);
    case 'I64':
      return new BigInt64Array(n);
    case 'U8':
      return new Uint8Array(n);
  }
}

function littleEndianHost(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/**
 * Parse a safetensors file: an 8-byte little-endian header length, a JSON header, then the tensor
 * bytes. Validates every dtype, shape and offset (contiguous, in order of offset, no gaps, no
 * overlap, the buffer fully covered) against the caps; the data is copied into aligned arrays.
 */
export function readSafetensors(bytes: Uint8Array, caps: SafetensorsCaps = {}): SafetensorsFile {
  const c = { ...DEFAULTS, ...caps };
  const fail = (message: string): FirnError => new FirnError(c.errorCode, `safetensors: ${message}`);
  if (!littleEndianHost()) throw new FirnError('E_UNSUPPORTED', 'safetensors needs a little-endian host');
  if (bytes.length > c.maxBytes) throw new TooLargeError('safetensors file', bytes.length, c.maxBytes);
  if (bytes.length < 8) throw fail('shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(c.maxHeaderBytes))
    throw fail(`header length ${headerLen} over the cap of ${c.maxHeaderBytes}`);
  const hl = Number(headerLen);
  if (8 + hl > bytes.length) throw fail('header runs past the end of the file');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hl)));
  } catch (cause) {
    if (!isDecodeVerdict(cause)) throw cause;
    throw new FirnError(c.errorCode, 'safetensors: header is not valid UTF-8 JSON', { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw fail('header is not a JSON object');
  const dataStart = 8 + hl;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = Object.create(null);
  const entries: { name: string; dtype: SafeDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, spec] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
        throw fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(spec)) {
        if (typeof v !== 'string') throw fail(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (entries.length >= c.maxTensors) throw fail(`more than ${c.maxTensors} tensors`);
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
      throw fail(`tensor ${name} is not an object`);
    const { dtype, shape, data_offsets: off } = spec as Record<string, unknown>;
    for (const k of Object.keys(spec))
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets')
        throw fail(`tensor ${name} has unknown field ${k}`);
    if (typeof dtype !== 'string' || !(dtype in SIZES))
      throw fail(`tensor ${name} has unsupported dtype ${String(dtype)}`);
    if (!Array.isArray(shape) || shape.length > c.maxRank)
      throw fail(`tensor ${name} shape must be an array of rank <= ${c.maxRank}`);
    let count = 1;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
        throw fail(`tensor ${name} shape has a bad dimension`);
      count *= d;
      if (count > dataLen) throw fail(`tensor ${name} shape is larger than the data`);
    }
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) ||
      off[0] > off[1] ||
      off[1] > dataLen
    )
      throw fail(`tensor ${name} data_offsets are invalid`);
    const [begin, end] = off as [number, number];
    if (end - begin !== count * SIZES[dtype as SafeDtype])
      throw fail(
        `tensor ${name} holds ${end - begin} bytes but shape and dtype need ${count * SIZES[dtype as SafeDtype]}`,
      );
    entries.push({ name, dtype: dtype as SafeDtype, shape: shape as number[], begin, end });
  }
  // The format requires the byte buffer to be covered exactly, which also rules out overlaps.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin !== cursor) throw fail(`tensor ${e.name} does not start where the previous one ends`);
    cursor = e.end;
  }
  if (cursor !== dataLen) throw fail(`${dataLen - cursor} bytes of data belong to no tensor`);
  const tensors: Record<string, SafeTensor> = Object.create(null);
  for (const e of entries) {
    const data = alloc(e.dtype, (e.end - e.begin) / SIZES[e.dtype]);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}

/** Serialise tensors (in name order, so equal input gives equal bytes) with optional string metadata. */
export function writeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  if (!littleEndianHost()) throw new FirnError('E_UNSUPPORTED', 'safetensors needs a little-endian host');
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new FirnError(
        'E_INVALID_INPUT',
        `tensor ${name}: shape holds ${count} values, data has ${t.data.length}`,
      );
    if (alloc(t.dtype, 0).constructor !== t.data.constructor)
      throw new FirnError('E_INVALID_INPUT', `tensor ${name}: data array does not match dtype ${t.dtype}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + jsonBytes) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let o = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name]!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), o);
    o += d.byteLength;
  }
  return out;
}
