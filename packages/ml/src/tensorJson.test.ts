import { describe, expect, it } from 'vitest';
import { parseTensorMap, tensorMapToJson } from './tensorJson.ts';

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
