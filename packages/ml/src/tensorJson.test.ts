import { describe, expect, it } from 'vitest';
import {
  FIXED_JSON_ELEMENT_WIDTH,
  parseTensorMap,
  tensorMapToFixedWidthJson,
  tensorMapToJson,
} from './tensorJson.ts';

// Validation of the tensor JSON format. Not covered: inputs near the 16M-element default cap.
describe('parseTensorMap', () => {
  it('parses every type and round-trips through tensorMapToJson', () => {
    const src = {
      f: { dims: [2, 2], type: 'float32', data: [0.1, -2, 'NaN', 'Infinity'] },
      d: { dims: [1], type: 'float64', data: [0.1] },
      i: { dims: [2], type: 'int32', data: [-2147483648, 7] },
      l: { dims: [3], type: 'int64', data: [1, '-9223372036854775808', '9223372036854775807'] },
      u: { dims: [2], type: 'uint8', data: [0, 255] },
      b: { dims: [2], type: 'bool', data: [true, false] },
      s: { dims: [], type: 'float32', data: [3] },
      z: { dims: [0, 3], type: 'float32', data: [] },
    };
    const m = parseTensorMap(JSON.stringify(src));
    expect(m['f']?.data).toBeInstanceOf(Float32Array);
    expect((m['f']!.data as Float32Array)[0]).toBe(Math.fround(0.1));
    expect((m['l']!.data as BigInt64Array)[1]).toBe(-(1n << 63n));
    const back = JSON.parse(tensorMapToJson(m));
    expect(back.l.data).toEqual([1, '-9223372036854775808', '9223372036854775807']);
    expect(back.f.data).toEqual([Math.fround(0.1), -2, 'NaN', 'Infinity']);
    expect(back.b.data).toEqual([true, false]);
    expect(back.s).toEqual({ dims: [], type: 'float32', data: [3] });
    expect(parseTensorMap(new TextEncoder().encode(JSON.stringify(src)))['u']?.data).toEqual(
      Uint8Array.from([0, 255]),
    );
  });

  it('rejects bad shapes, types and values, naming the input', () => {
    const cases: [object, RegExp][] = [
      [{ x: { dims: [2, 2], type: 'float32', data: [1, 2, 3] } }, /"x".*hold 4 elements, data has 3/],
      [{ x: { dims: [-1], type: 'float32', data: [] } }, /"x".*non-negative/],
      [{ x: { dims: [1.5], type: 'float32', data: [1] } }, /"x"/],
      [{ x: { dims: [1], type: 'float16', data: [1] } }, /"x".*type/],
      [{ x: { dims: [1], type: 'int32', data: [1.5] } }, /"x".*data\[0\]/],
      [{ x: { dims: [1], type: 'uint8', data: [256] } }, /"x"/],
      [{ x: { dims: [1], type: 'int64', data: ['9223372036854775808'] } }, /"x".*int64/],
      [{ x: { dims: [1], type: 'int64', data: [2 ** 60] } }, /"x"/],
      [{ x: { dims: [1], type: 'float32', data: ['1'] } }, /"x"/],
      [{ x: { dims: [1], type: 'bool', data: [2] } }, /"x"/],
      [{ x: { dims: [1], type: 'float32', data: [1], extra: 1 } }, /"x".*unknown field/],
      [{ y: { dims: [1000, 1000, 1000], type: 'float32', data: [] } }, /"y".*more than/],
    ];
    for (const [obj, re] of cases)
      expect(() => parseTensorMap(JSON.stringify(obj))).toThrow(
        expect.objectContaining({ code: 'E_INPUT_INVALID', message: expect.stringMatching(re) }),
      );
    expect(() => parseTensorMap('{not json')).toThrow(expect.objectContaining({ code: 'E_INPUT_INVALID' }));
    expect(() => parseTensorMap('[]')).toThrow(expect.objectContaining({ code: 'E_INPUT_INVALID' }));
    expect(() => parseTensorMap('{"a":1}', { maxBytes: 3 })).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
    const two = {
      a: { dims: [3], type: 'uint8', data: [1, 2, 3] },
      b: { dims: [3], type: 'uint8', data: [1, 2, 3] },
    };
    expect(() => parseTensorMap(JSON.stringify(two), { maxTotalElements: 5 })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/"b".*total/) }),
    );
    expect(() => parseTensorMap(JSON.stringify(two), { maxTensors: 1 })).toThrow(
      expect.objectContaining({ code: 'E_INPUT_INVALID' }),
    );
  });
});

describe('tensorMapToJson', () => {
  it('writes an output named "__proto__" as an own key (it does not vanish into the prototype)', () => {
    const PROTO = '__proto__';
    const outputs = JSON.parse('{"__proto__": 1, "y": 2}') as Record<string, unknown>;
    outputs[PROTO] = { dims: [1], type: 'float32', data: new Float32Array([5]) };
    outputs['y'] = { dims: [1], type: 'float32', data: new Float32Array([6]) };
    const text = tensorMapToJson(outputs as Parameters<typeof tensorMapToJson>[0]);
    const back = JSON.parse(text) as Record<string, { data: number[] }>;
    expect(Object.keys(back)).toEqual(['__proto__', 'y']);
    expect(back[PROTO]!.data).toEqual([5]);
  });
});

describe('tensorMapToFixedWidthJson', () => {
  const map = (f: number[], l: bigint[], i: number[], u: number[], b: number[]) => ({
    'f "x"': { type: 'float32', dims: [f.length], data: Float32Array.from(f) },
    d: { type: 'float64', dims: [1, f.length], data: Float64Array.from(f) },
    l: { type: 'int64', dims: [l.length], data: BigInt64Array.from(l) },
    i: { type: 'int32', dims: [i.length], data: Int32Array.from(i) },
    u: { type: 'uint8', dims: [u.length], data: Uint8Array.from(u) },
    b: { type: 'bool', dims: [b.length], data: Uint8Array.from(b) },
  });
  // The longest and shortest texts each type has, and ordinary values.
  const long = map(
    [-2.2250738585072014e-308, Number.NaN, Number.NEGATIVE_INFINITY, -1.1754943508222875e-38],
    [-(1n << 63n), (1n << 63n) - 1n, -9007199254740991n],
    [-2147483648, 2147483647],
    [255, 100],
    [0, 0],
  );
  const short = map([0, 1, 2, 3], [0n, 1n, 2n], [0, 1], [0, 1], [1, 1]);

  it('has a length that depends on names, types and dims only, and parses back to what tensorMapToJson gives', () => {
    const a = tensorMapToFixedWidthJson(long);
    const b = tensorMapToFixedWidthJson(short);
    expect(a.length).toBe(b.length);
    for (const m of [long, short]) {
      const fixed = parseTensorMap(tensorMapToFixedWidthJson(m));
      const plain = parseTensorMap(tensorMapToJson(m));
      expect(Object.keys(fixed)).toEqual(Object.keys(plain));
      for (const k of Object.keys(plain)) expect(fixed[k]).toEqual(plain[k]);
    }
    // Each element takes exactly its type's width (the value, then spaces).
    const f32 = tensorMapToFixedWidthJson({
      x: { type: 'float32', dims: [2], data: Float32Array.of(1, 0.1) },
    });
    expect(f32).toBe(
      `{"x":{"dims":[2],"type":"float32","data":[${'1'.padEnd(24)},${String(Math.fround(0.1)).padEnd(24)}]}}`,
    );
    expect(FIXED_JSON_ELEMENT_WIDTH.float32).toBe(24);
  });

  it('refuses an unsupported element type', () => {
    expect(() => tensorMapToFixedWidthJson({ s: { type: 'string', dims: [1], data: ['a'] } })).toThrow(
      expect.objectContaining({ code: 'E_UNSUPPORTED' }),
    );
  });
});
