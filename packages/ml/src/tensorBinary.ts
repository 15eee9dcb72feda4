import { endianness } from 'node:os';
import { FirnError, TooLargeError } from '@firn/core';
import {
  DEFAULT_TENSOR_JSON_CAPS,
  type TensorData,
  type TensorJsonCaps,
  type TensorLike,
  type TensorMap,
  type TensorType,
} from './tensorJson.ts';

/**
 * Compact binary form of a tensor map, for the warm inference session (where tensor JSON text
 * costs more than the model): "FTB1", u32 count, then per tensor u16 name length, UTF-8 name, u8
 * type, u8 rank, rank x u32 dims, and the raw little-endian elements. Same element types and
 * caps as tensor JSON.
 */

const MAGIC = [0x46, 0x54, 0x42, 0x31]; // "FTB1"
const TYPE_CODES: Record<TensorType, number> = {
  float32: 1,
  float64: 2,
  int32: 3,
  int64: 4,
  uint8: 5,
  bool: 6,
};
const CODE_TYPES = Object.fromEntries(Object.entries(TYPE_CODES).map(([k, v]) => [v, k])) as Record<
  number,
  TensorType
>;
/** Bytes per element of each tensor type in the binary tensor encoding (little-endian, bool as one byte). */
export const TENSOR_ELEMENT_BYTES: Readonly<Record<TensorType, number>> = {
  float32: 4,
  float64: 8,
  int32: 4,
  int64: 8,
  uint8: 1,
  bool: 1,
};

// Typed arrays are host-endian; every supported host is little-endian, and the format says so.
const LITTLE = endianness() === 'LE';
function requireLittleEndian(): void {
  if (!LITTLE) throw new FirnError('E_UNSUPPORTED', 'binary tensors need a little-endian host');
}

const bad = (message: string) => new FirnError('E_INPUT_INVALID', `binary tensors: ${message}`);

function viewBytes(data: unknown, type: TensorType, elements: number, name: string): Uint8Array {
  const d = data as ArrayBufferView & { length: number };
  if (!ArrayBuffer.isView(d) || d.length !== elements)
    throw new FirnError('E_INPUT_INVALID', `tensor "${name}": data length differs from its dims`);
  const want = TENSOR_ELEMENT_BYTES[type];
  if (d.byteLength !== elements * want)
    throw new FirnError('E_INPUT_INVALID', `tensor "${name}": data is not ${type}`);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/**
 * Encode named tensors (onnxruntime outputs or TensorValues) in the binary tensor form. `reserve`
 * leading bytes (zero) are left before it, for a caller's own header, so the elements are copied
 * once (the session payload's format and status bytes).
 */
export function encodeTensorsBinary(tensors: Record<string, TensorLike>, reserve = 0): Uint8Array {
  const parts = encodeTensorsBinaryParts(tensors, reserve);
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The binary tensor form of `tensors` as consecutive parts whose concatenation is exactly
 * `encodeTensorsBinary(tensors, reserve)`: small fresh header parts (the first starts with
 * `reserve` zero bytes for the caller's own header) and, for each tensor, a zero-copy view of its
 * elements. For a sender that seals and writes the parts as they are (the warm session's hot path,
 * docs/decisions/1360-session-hot-path-without-copies.md), so the elements are never copied in JS.
 * The views alias the tensors' memory: use the parts before the tensors change.
 * Throws E_UNSUPPORTED (element type, big-endian host), E_INPUT_INVALID (data length or type
 * differs from dims, name length).
 */
export function encodeTensorsBinaryParts(tensors: Record<string, TensorLike>, reserve = 0): Uint8Array[] {
  requireLittleEndian();
  const entries = Object.entries(tensors);
  // What the decoder refuses is refused here, before anything is sealed or sent (same caps).
  const c = DEFAULT_TENSOR_JSON_CAPS;
  if (entries.length === 0 || entries.length > c.maxTensors)
    throw bad(`tensor count must be 1..${c.maxTensors}`);
  let total = 0;
  const parts: Uint8Array[] = [];
  // The running header: reserve || magic || count, then each tensor's name, type, rank and dims.
  let head: number[] = new Array<number>(reserve).fill(0);
  head.push(...MAGIC, ...u32le(entries.length));
  for (const [name, t] of entries) {
    const type = t.type as TensorType;
    if (!Object.hasOwn(TYPE_CODES, type))
      throw new FirnError('E_UNSUPPORTED', `tensor "${name}" has unsupported type ${t.type}`);
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length === 0 || nameBytes.length > c.maxNameLength)
      throw bad('tensor name length out of range');
    if (t.dims.length > c.maxRank) throw bad(`tensor "${name}" rank over ${c.maxRank}`);
    const elements = t.dims.reduce((a, b) => a * b, 1);
    total += elements;
    if (total > c.maxTotalElements) throw bad(`more than ${c.maxTotalElements} elements in all`);
    const data = viewBytes(t.data, type, elements, name);
    if (type === 'bool' && data.some((v) => v > 1))
      throw bad(`tensor "${name}" has a bool other than 0 or 1`);
    head.push(nameBytes.length & 0xff, nameBytes.length >>> 8);
    for (const b of nameBytes) head.push(b);
    head.push(TYPE_CODES[type], t.dims.length);
    for (const d of t.dims) {
      if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) throw bad(`tensor "${name}" has a bad dimension`);
      head.push(...u32le(d));
    }
    parts.push(Uint8Array.from(head), data);
    head = [];
  }
  if (head.length > 0) parts.push(Uint8Array.from(head));
  return parts;
}

/** A tensor's name, element type and dims: what an encoding's length depends on. */
export interface TensorShapeSpec {
  type: string;
  dims: readonly number[];
}

/**
 * Bytes `encodeTensorsBinary(tensors, reserve)` gives for tensors of these names, types and dims,
 * whatever their values, computed without encoding: `reserve` + magic and count (8) + per tensor
 * u16 name length, UTF-8 name, type and rank bytes, 4 bytes a dim and the elements
 * (TENSOR_ELEMENT_BYTES each). Undefined for no tensors or an element type the encoder refuses; it
 * does not check the other caps (the encoder does). Stops adding at `stopAbove` bytes (returns
 * the first sum over it), for a caller that only needs to know a cap was passed.
 */
export function tensorsBinaryLength(
  specs: Record<string, TensorShapeSpec>,
  reserve = 0,
  stopAbove = Number.POSITIVE_INFINITY,
): number | undefined {
  const entries = Object.entries(specs);
  if (entries.length === 0) return undefined;
  let n = reserve + MAGIC.length + 4;
  for (const [name, t] of entries) {
    if (!Object.hasOwn(TYPE_CODES, t.type)) return undefined;
    const elements = t.dims.reduce((a, b) => a * b, 1);
    n += 2 + Buffer.byteLength(name, 'utf8') + 2 + 4 * t.dims.length;
    n += elements * TENSOR_ELEMENT_BYTES[t.type as TensorType];
    if (n > stopAbove) return n;
  }
  return n;
}

const u32le = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

function typedArrayOf(type: TensorType, bytes: Uint8Array, fresh: boolean): TensorData {
  // Bytes only this decoder holds (a view of a session message's own plaintext buffer) become the
  // array's memory when aligned for it; anything else is copied: aligned for the typed array and detached from the
  // (decrypted) message buffer. (Uint8Array's slice, never Buffer's, which would return a view of
  // the whole pool buffer.)
  const own =
    fresh && bytes.byteOffset % TENSOR_ELEMENT_BYTES[type] === 0
      ? bytes
      : (Uint8Array.prototype.slice.call(bytes) as Uint8Array);
  const { buffer, byteOffset, byteLength } = own;
  switch (type) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'float64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'int32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    default:
      return new Uint8Array(buffer, byteOffset, byteLength);
  }
}

/**
 * Consecutive bytes a binary tensor map is read from: a buffer, or the authenticated plaintext of a
 * session message (`SessionEndpoint.openReading`).
 */
export interface TensorByteSource {
  /** Bytes not taken yet. */
  readonly left: number;
  /** The next `n` bytes (`n <= left`). */
  take(n: number): Uint8Array;
  /**
   * True when every `take` returns memory that only the caller holds (a view of a buffer nothing
   * else references): the decoder then makes the elements' typed arrays over it (no copy) when it
   * is aligned for them.
   */
  readonly fresh: boolean;
}

/** Decode the binary tensor form: size-capped, every length checked; fails with E_INPUT_INVALID. */
export function decodeTensorsBinary(bytes: Uint8Array, caps: TensorJsonCaps = {}): TensorMap {
  let o = 0;
  return decodeTensorsBinaryFrom(
    {
      get left() {
        return bytes.length - o;
      },
      take(n) {
        o += n;
        return bytes.subarray(o - n, o);
      },
      fresh: false,
    },
    caps,
  );
}

/**
 * `decodeTensorsBinary` reading from `src` (all of it: bytes left over are refused). With a fresh
 * source (a session message's authenticated plaintext, decisions 1360 and 1715) a tensor whose
 * elements are aligned for its type gets its typed array over them, no copy; others are copied. Same caps and errors: E_TOO_LARGE over `maxBytes`, E_INPUT_INVALID
 * for anything malformed.
 */
export function decodeTensorsBinaryFrom(src: TensorByteSource, caps: TensorJsonCaps = {}): TensorMap {
  requireLittleEndian();
  const c = { ...DEFAULT_TENSOR_JSON_CAPS, ...caps };
  if (src.left > c.maxBytes) throw new TooLargeError('binary tensors', src.left, c.maxBytes);
  const take = (n: number): Uint8Array => {
    if (n > src.left) throw bad('truncated');
    return src.take(n);
  };
  const u16 = (b: Uint8Array, at: number) => b[at]! | (b[at + 1]! << 8);
  const u32 = (b: Uint8Array, at: number) =>
    (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  if (src.left < 8) throw bad('missing FTB1 header');
  const head = take(8);
  if (MAGIC.some((m, i) => head[i] !== m)) throw bad('missing FTB1 header');
  const count = u32(head, 4);
  if (count === 0 || count > c.maxTensors) throw bad(`tensor count must be 1..${c.maxTensors}`);
  // No prototype: a tensor named "__proto__" is a tensor (an own key), as it is to the sender.
  const out: TensorMap = Object.create(null);
  let total = 0;
  const dec = new TextDecoder('utf-8', { fatal: true });
  for (let k = 0; k < count; k++) {
    const nameLen = u16(take(2), 0);
    if (nameLen === 0 || nameLen > c.maxNameLength) throw bad('tensor name length out of range');
    const nameAndKind = take(nameLen + 2);
    let name: string;
    try {
      name = dec.decode(nameAndKind.subarray(0, nameLen));
    } catch {
      throw bad('tensor name is not UTF-8');
    }
    if (Object.hasOwn(out, name)) throw bad(`duplicate tensor "${name}"`);
    const type = CODE_TYPES[nameAndKind[nameLen]!];
    const rank = nameAndKind[nameLen + 1]!;
    if (type === undefined) throw bad(`tensor "${name}" has an unknown type code`);
    if (rank > c.maxRank) throw bad(`tensor "${name}" rank over ${c.maxRank}`);
    const dimBytes = take(4 * rank);
    const dims: number[] = [];
    let elements = 1;
    for (let i = 0; i < rank; i++) {
      const d = u32(dimBytes, 4 * i);
      dims.push(d);
      elements *= d;
    }
    total += elements;
    if (total > c.maxTotalElements) throw bad(`more than ${c.maxTotalElements} elements in all`);
    const data = typedArrayOf(type, take(elements * TENSOR_ELEMENT_BYTES[type]), src.fresh);
    if (type === 'bool' && (data as Uint8Array).some((v) => v > 1))
      throw bad(`tensor "${name}" has a bool other than 0 or 1`);
    out[name] = { type, dims, data };
  }
  if (src.left !== 0) throw bad('trailing bytes');
  return out;
}
