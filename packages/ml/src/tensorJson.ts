import { FirnError, TooLargeError } from '@firn/core';
import { isDecodeVerdict } from './decodeVerdict.ts';

/** Element types the tensor JSON format carries; names match onnxruntime's tensor types. */
export type TensorType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bool';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** A plain tensor: onnxruntime's Tensor constructor accepts (type, data, dims) of exactly this. */
export interface TensorValue {
  type: TensorType;
  dims: number[];
  /** bool is stored as Uint8Array of 0/1, as onnxruntime expects. */
  data: TensorData;
}

export type TensorMap = Record<string, TensorValue>;

export interface TensorJsonCaps {
  /** Size of the JSON text in bytes. */
  maxBytes?: number;
  maxTensors?: number;
  maxNameLength?: number;
  maxRank?: number;
  /** Sum of elements over all tensors. */
  maxTotalElements?: number;
}

export const DEFAULT_TENSOR_JSON_CAPS: Required<TensorJsonCaps> = {
  maxBytes: 256 * 1024 * 1024,
  maxTensors: 64,
  maxNameLength: 256,
  maxRank: 8,
  maxTotalElements: 16 * 1024 * 1024,
};

const TYPES: readonly TensorType[] = ['float32', 'float64', 'int32', 'int64', 'uint8', 'bool'];
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const DECIMAL_RE = /^-?\d{1,20}$/;

function bad(name: string, message: string): FirnError {
  return new FirnError('E_INPUT_INVALID', `input "${name}": ${message}`, { details: { input: name } });
}

// JSON has no NaN or infinities, so these three spellings stand for them in both directions.
function parseFloatElement(v: unknown, name: string, i: number): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  throw bad(name, `data[${i}] is not a number`);
}

function parseIntElement(v: unknown, name: string, i: number, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw bad(name, `data[${i}] is not an integer in [${min}, ${max}]`);
  return v;
}

function parseInt64Element(v: unknown, name: string, i: number): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw bad(name, `data[${i}] is not a safe integer (send big values as strings)`);
    return BigInt(v);
  }
  if (typeof v === 'string' && DECIMAL_RE.test(v)) {
    const b = BigInt(v);
    if (b >= INT64_MIN && b <= INT64_MAX) return b;
  }
  throw bad(name, `data[${i}] is not an int64`);
}

function toText(json: string | Uint8Array, maxBytes: number): string {
  if (typeof json === 'string') {
    const size = Buffer.byteLength(json, 'utf8');
    if (size > maxBytes) throw new TooLargeError('tensor JSON', size, maxBytes);
    return json;
  }
  if (json.length > maxBytes) throw new TooLargeError('tensor JSON', json.length, maxBytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch (cause) {
    if (!isDecodeVerdict(cause)) throw cause;
    throw new FirnError('E_INPUT_INVALID', 'tensor JSON is not valid UTF-8', { cause });
  }
}

/**
 * Parse the tensor JSON format `{"<name>": {"dims": [..], "type": "float32", "data": [..]}}` into
 * typed tensors, validating every name, shape, type and element against the caps. Throws FirnError
 * E_INPUT_INVALID naming the offending input, or E_TOO_LARGE for the text size.
 */
export function parseTensorMap(json: string | Uint8Array | object, caps: TensorJsonCaps = {}): TensorMap {
  const c = { ...DEFAULT_TENSOR_JSON_CAPS, ...caps };
  let root: unknown = json;
  if (typeof json === 'string' || json instanceof Uint8Array) {
    const text = toText(json, c.maxBytes);
    try {
      root = JSON.parse(text);
    } catch (cause) {
      if (!isDecodeVerdict(cause)) throw cause;
      throw new FirnError('E_INPUT_INVALID', 'tensor JSON does not parse', { cause });
    }
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root))
    throw new FirnError('E_INPUT_INVALID', 'tensor JSON must be an object of named tensors');
  const entries = Object.entries(root);
  if (entries.length > c.maxTensors)
    throw new FirnError(
      'E_INPUT_INVALID',
      `tensor JSON has ${entries.length} tensors, over the cap of ${c.maxTensors}`,
    );
  const out: TensorMap = Object.create(null);
  let total = 0;
  for (const [name, spec] of entries) {
    if (name.length === 0 || name.length > c.maxNameLength)
      throw new FirnError(
        'E_INPUT_INVALID',
        `input name length ${name.length} outside 1..${c.maxNameLength}`,
      );
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
      throw bad(name, 'must be an object');
    const { dims, type, data } = spec as { dims?: unknown; type?: unknown; data?: unknown };
    for (const k of Object.keys(spec))
      if (k !== 'dims' && k !== 'type' && k !== 'data') throw bad(name, `unknown field "${k}"`);
    if (typeof type !== 'string' || !TYPES.includes(type as TensorType))
      throw bad(name, `type must be one of ${TYPES.join(', ')}`);
    if (!Array.isArray(dims) || dims.length > c.maxRank)
      throw bad(name, `dims must be an array of at most ${c.maxRank}`);
    let count = 1;
    for (const d of dims) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
        throw bad(name, 'dims must be non-negative integers');
      count *= d;
      if (count > c.maxTotalElements) throw bad(name, `more than ${c.maxTotalElements} elements`);
    }
    if (!Array.isArray(data)) throw bad(name, 'data must be an array');
    if (data.length !== count)
      throw bad(name, `dims [${dims.join(', ')}] hold ${count} elements, data has ${data.length}`);
    total += count;
    if (total > c.maxTotalElements)
      throw bad(name, `total elements over all inputs exceed the cap of ${c.maxTotalElements}`);
    out[name] = {
      type: type as TensorType,
      dims: dims as number[],
      data: decodeData(type as TensorType, data, name),
    };
  }
  return out;
}

function decodeData(type: TensorType, data: unknown[], name: string): TensorData {
  const n = data.length;
  switch (type) {
    case 'float32': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = parseFloatElement(data[i], name, i);
      return a;
    }
    case 'float64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = parseFloatElement(data[i], name, i);
      return a;
    }
    case 'int32': {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = parseIntElement(data[i], name, i, -2147483648, 2147483647);
      return a;
    }
    case 'int64': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = parseInt64Element(data[i], name, i);
      return a;
    }
    case 'uint8': {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = parseIntElement(data[i], name, i, 0, 255);
      return a;
    }
    case 'bool': {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i];
        if (v === true || v === 1) a[i] = 1;
        else if (v === false || v === 0) a[i] = 0;
        else throw bad(name, `data[${i}] is not a boolean`);
      }
      return a;
    }
  }
}

function encodeFloat(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

/** The subset of an onnxruntime tensor that output encoding reads. */
export interface TensorLike {
  type: string;
  dims: readonly number[];
  data: unknown;
}

/**
 * Encode named tensors (onnxruntime outputs or TensorValues) as tensor JSON text. float32 values go
 * out as the JS numbers they widen to, which parse back to the same float32; int64 values outside
 * the safe-integer range go out as decimal strings.
 */
export function tensorMapToJson(outputs: Record<string, TensorLike>): string {
  // No prototype: an output named "__proto__" is an own key like any other, not a prototype set.
  const obj: Record<string, { dims: number[]; type: TensorType; data: (number | string | boolean)[] }> =
    Object.create(null);
  for (const [name, t] of Object.entries(outputs)) {
    const type = checkedType(name, t);
    const src = t.data as ArrayLike<number | bigint | boolean>;
    const data: (number | string | boolean)[] = new Array(src.length);
    for (let i = 0; i < src.length; i++) data[i] = jsonElement(type, src[i]!);
    obj[name] = { dims: [...t.dims], type, data };
  }
  return JSON.stringify(obj);
}

function checkedType(name: string, t: TensorLike): TensorType {
  const type = t.type as TensorType;
  if (!TYPES.includes(type))
    throw new FirnError('E_UNSUPPORTED', `output "${name}" has unsupported type ${t.type}`);
  return type;
}

function jsonElement(type: TensorType, v: number | bigint | boolean): number | string | boolean {
  if (type === 'int64') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (type === 'bool') return Boolean(v);
  return encodeFloat(Number(v));
}

/**
 * Characters every element of a type takes in fixed-width tensor JSON: the longest JSON text one
 * element can have (a double's shortest round-trip form with sign and exponent,
 * "-2.2250738585072014e-308"; int32 "-2147483648"; an int64 as a quoted decimal string;
 * uint8 "255"; "false").
 */
export const FIXED_JSON_ELEMENT_WIDTH: Readonly<Record<TensorType, number>> = {
  float32: 24,
  float64: 24,
  int32: 11,
  int64: 22,
  uint8: 3,
  bool: 5,
};

/**
 * Characters (and UTF-8 bytes) of `tensorMapToFixedWidthJson(outputs)` for tensors of these names,
 * types and dims, whatever their values, computed without encoding: the braces and commas, each
 * tensor's `"name":{"dims":[..],"type":"..","data":[` and `]}`, then FIXED_JSON_ELEMENT_WIDTH a
 * element and the commas between elements. Undefined for no tensors or an unsupported element
 * type. Stops adding at `stopAbove` bytes (returns the first sum over it).
 */
export function fixedWidthJsonLength(
  specs: Record<string, { type: string; dims: readonly number[] }>,
  stopAbove = Number.POSITIVE_INFINITY,
): number | undefined {
  const entries = Object.entries(specs);
  if (entries.length === 0) return undefined;
  let n = 1 + entries.length;
  for (const [name, t] of entries) {
    if (!Object.hasOwn(FIXED_JSON_ELEMENT_WIDTH, t.type)) return undefined;
    const type = t.type as TensorType;
    const elements = t.dims.reduce((a, b) => a * b, 1);
    const head = `${JSON.stringify(name)}:{"dims":${JSON.stringify([...t.dims])},"type":"${type}","data":[]}`;
    n +=
      Buffer.byteLength(head, 'utf8') + elements * FIXED_JSON_ELEMENT_WIDTH[type] + Math.max(0, elements - 1);
    if (n > stopAbove) return n;
  }
  return n;
}

/**
 * `tensorMapToJson` with every element written at its type's fixed width
 * (FIXED_JSON_ELEMENT_WIDTH, space-padded after the value; JSON allows the whitespace), so the text's
 * length depends only on the tensors' names, types and dims, never on their values: the warm
 * session's JSON format (docs/decisions/1735-session-messages-padded.md). Parses back to the same
 * tensors as `tensorMapToJson`'s text. Throws E_UNSUPPORTED for an unsupported element type.
 */
export function tensorMapToFixedWidthJson(outputs: Record<string, TensorLike>): string {
  const out: string[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    const type = checkedType(name, t);
    const width = FIXED_JSON_ELEMENT_WIDTH[type];
    const src = t.data as ArrayLike<number | bigint | boolean>;
    const data: string[] = new Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const text = JSON.stringify(jsonElement(type, src[i]!));
      // Cannot happen for the supported types (the widths are their longest texts); refused, not leaked.
      if (text.length > width) throw new FirnError('E_UNSUPPORTED', `an element of "${name}" is too long`);
      data[i] = text.padEnd(width, ' ');
    }
    out.push(
      `${JSON.stringify(name)}:{"dims":${JSON.stringify([...t.dims])},"type":"${type}","data":[${data.join(',')}]}`,
    );
  }
  return `{${out.join(',')}}`;
}
