import { describe, expect, it } from 'vitest';
import {
  decodeTensorsBinary,
  decodeTensorsBinaryFrom,
  encodeTensorsBinary,
  encodeTensorsBinaryParts,
  tensorsBinaryLength,
} from './tensorBinary.ts';
import { fixedWidthJsonLength, tensorMapToFixedWidthJson } from './tensorJson.ts';

// Round trip and refusal of malformed input; not covered: big-endian hosts (refused by design).
describe('binary tensors', () => {
  it('round-trips every element type, including int64 beyond 2^53 and NaN', () => {
    const m = {
      a: { type: 'float32' as const, dims: [2, 2], data: Float32Array.from([1.5, Number.NaN, -0, 3e38]) },
      b: { type: 'int64' as const, dims: [1], data: BigInt64Array.from([(1n << 62n) + 1n]) },
      c: { type: 'bool' as const, dims: [3], data: Uint8Array.from([1, 0, 1]) },
      é: { type: 'float64' as const, dims: [], data: Float64Array.from([Math.PI]) },
    };
    const back = decodeTensorsBinary(encodeTensorsBinary(m));
    expect(Object.keys(back)).toEqual(Object.keys(m));
    expect(Array.from(back.a!.data as Float32Array)).toEqual(Array.from(m.a.data));
    expect((back.b!.data as BigInt64Array)[0]).toBe((1n << 62n) + 1n);
    expect(back.é!.dims).toEqual([]);
    expect(Array.from(back.c!.data as Uint8Array)).toEqual([1, 0, 1]);
  });

  it('leaves the reserved leading bytes for a caller header and encodes the same bytes after them', () => {
    const m = { x: { type: 'float32' as const, dims: [2], data: Float32Array.from([1, -2]) } };
    const plain = encodeTensorsBinary(m);
    const withHead = encodeTensorsBinary(m, 2);
    expect(withHead.length).toBe(plain.length + 2);
    expect(Array.from(withHead.subarray(0, 2))).toEqual([0, 0]);
    expect(Buffer.compare(Buffer.from(withHead.subarray(2)), Buffer.from(plain))).toBe(0);
    expect(Array.from(decodeTensorsBinary(withHead.subarray(2)).x!.data as Float32Array)).toEqual([1, -2]);
  });

  it('encodes as parts whose concatenation is the same bytes, the elements as views of the tensors', () => {
    const m = {
      input: { type: 'float32' as const, dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      b: { type: 'int64' as const, dims: [1], data: BigInt64Array.from([7n]) },
    };
    const parts = encodeTensorsBinaryParts(m, 2);
    expect(Buffer.compare(Buffer.concat(parts), Buffer.from(encodeTensorsBinary(m, 2)))).toBe(0);
    // No element copied: the data parts alias the tensors' own memory.
    expect(parts[1]!.buffer).toBe(m.input.data.buffer);
    expect(parts[3]!.buffer).toBe(m.b.data.buffer);
    expect(() =>
      encodeTensorsBinaryParts({ x: { type: 'float32', dims: [-1], data: new Float32Array(0) } }),
    ).toThrow(expect.objectContaining({ code: 'E_INPUT_INVALID' }));
  });

  it('from a fresh source views each aligned element buffer instead of copying it; same refusals', () => {
    const enc = encodeTensorsBinary({
      x: { type: 'float32', dims: [2], data: Float32Array.from([1, 2]) },
      y: { type: 'int64', dims: [1], data: BigInt64Array.from([-3n]) },
    });
    const pieces: Uint8Array[] = [];
    const fresh = (bytes: Uint8Array) => {
      let o = 0;
      return {
        get left() {
          return bytes.length - o;
        },
        take(n: number) {
          const p = Uint8Array.prototype.slice.call(bytes, o, o + n) as Uint8Array;
          o += n;
          pieces.push(p);
          return p;
        },
        fresh: true,
      };
    };
    const back = decodeTensorsBinaryFrom(fresh(enc));
    expect(Array.from(back.x!.data as Float32Array)).toEqual([1, 2]);
    expect((back.y!.data as BigInt64Array)[0]).toBe(-3n);
    expect(pieces.some((p) => p.buffer === (back.x!.data as Float32Array).buffer)).toBe(true);
    const code = { code: 'E_INPUT_INVALID' };
    expect(() => decodeTensorsBinaryFrom(fresh(enc.subarray(0, enc.length - 1)))).toThrow(
      expect.objectContaining(code),
    );
    expect(() => decodeTensorsBinaryFrom(fresh(Uint8Array.from([...enc, 0])))).toThrow(
      expect.objectContaining(code),
    );
  });

  it('decodes from a Buffer lying inside a larger buffer (as read off a socket) into its own aligned arrays', () => {
    const enc = encodeTensorsBinary({
      x: { type: 'float32', dims: [3], data: Float32Array.from([1, 2, 3]) },
    });
    const pool = Buffer.alloc(enc.length + 11, 7);
    pool.set(enc, 5);
    const back = decodeTensorsBinary(pool.subarray(5, 5 + enc.length));
    const d = back.x!.data as Float32Array;
    expect(Array.from(d)).toEqual([1, 2, 3]);
    // Its own buffer: not a view of the message (which is zeroed or reused afterwards).
    expect(d.buffer.byteLength).toBe(12);
  });

  it('refuses truncation, trailing bytes, bad magic, wrong data length and over-cap sizes', () => {
    const ok = encodeTensorsBinary({ x: { type: 'float32', dims: [4], data: new Float32Array(4) } });
    const code = { code: 'E_INPUT_INVALID' };
    expect(() => decodeTensorsBinary(ok.subarray(0, ok.length - 1))).toThrow(expect.objectContaining(code));
    expect(() => decodeTensorsBinary(Uint8Array.from([...ok, 0]))).toThrow(expect.objectContaining(code));
    const badMagic = Uint8Array.from(ok);
    badMagic[0] = 0;
    expect(() => decodeTensorsBinary(badMagic)).toThrow(expect.objectContaining(code));
    expect(() => decodeTensorsBinary(ok, { maxTotalElements: 3 })).toThrow(expect.objectContaining(code));
    expect(() => decodeTensorsBinary(ok, { maxBytes: 8 })).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
    expect(() =>
      encodeTensorsBinary({ x: { type: 'float32', dims: [5], data: new Float32Array(4) } }),
    ).toThrow(expect.objectContaining(code));
  });
});

describe('encoding lengths without encoding', () => {
  const arrays = {
    float32: (n: number) => new Float32Array(n).fill(-1.2345678e-30),
    float64: (n: number) => new Float64Array(n).fill(-2.2250738585072014e-308),
    int32: (n: number) => new Int32Array(n).fill(-2147483648),
    int64: (n: number) => new BigInt64Array(n).fill(-(1n << 63n)),
    uint8: (n: number) => new Uint8Array(n).fill(255),
    bool: (n: number) => new Uint8Array(n).fill(1),
  } as const;
  const shapes = [[], [0], [1], [3], [2, 5], [1, 4, 2]];
  it("tensorsBinaryLength and fixedWidthJsonLength equal the encoders' lengths, for every type and shape", () => {
    for (const [type, make] of Object.entries(arrays))
      for (const dims of shapes)
        for (const reserve of [0, 2]) {
          const n = dims.reduce((a, b) => a * b, 1);
          const m = {
            'out é': { type, dims, data: make(n) },
            y: { type, dims: [n], data: make(n) },
          } as never;
          expect(tensorsBinaryLength(m, reserve), `${type} [${dims}]`).toBe(
            encodeTensorsBinary(m, reserve).length,
          );
          expect(fixedWidthJsonLength(m), `${type} [${dims}]`).toBe(
            Buffer.byteLength(tensorMapToFixedWidthJson(m), 'utf8'),
          );
        }
  });
  it('are undefined for no tensors or a type the encoders refuse', () => {
    expect(tensorsBinaryLength({})).toBeUndefined();
    expect(fixedWidthJsonLength({})).toBeUndefined();
    expect(tensorsBinaryLength({ s: { type: 'string', dims: [1] } })).toBeUndefined();
    expect(fixedWidthJsonLength({ s: { type: 'string', dims: [1] } })).toBeUndefined();
  });
});
