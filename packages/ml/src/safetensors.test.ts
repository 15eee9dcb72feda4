import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from './safetensors.ts';

// Round trip and header tampering. Not covered: F16/BF16 (unsupported by design), files over 1 MB.
function withHeader(header: object, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips every dtype and the metadata', () => {
    const tensors = {
      w: { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1.5, -2, 3, 0.1, 5, 6]) },
      d: { dtype: 'F64' as const, shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
      i: { dtype: 'I32' as const, shape: [1], data: Int32Array.from([-7]) },
      l: { dtype: 'I64' as const, shape: [2], data: BigInt64Array.from([-(1n << 62n), 5n]) },
      u: { dtype: 'U8' as const, shape: [3, 1], data: Uint8Array.from([0, 255, 9]) },
      e: { dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) },
    };
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    // Data starts 8-byte aligned.
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect(back.metadata).toEqual({ format: 'pt' });
    for (const [k, t] of Object.entries(tensors)) {
      expect(back.tensors[k]?.dtype).toBe(t.dtype);
      expect(back.tensors[k]?.shape).toEqual(t.shape);
      expect(Array.from(back.tensors[k]!.data as ArrayLike<unknown>)).toEqual(
        Array.from(t.data as ArrayLike<unknown>),
      );
    }
    // Deterministic bytes for equal content.
    expect(writeSafetensors(tensors, { format: 'pt' })).toEqual(bytes);
  });

  it('rejects malformed headers with the chosen code', () => {
    const data = new Uint8Array(8);
    const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    expect(() => readSafetensors(withHeader(ok, data))).not.toThrow();
    const cases: object[] = [
      { a: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } },
      { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } },
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 16] } },
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, // 4 bytes uncovered
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      },
      { a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } },
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8], extra: 1 } },
      { __metadata__: { n: 1 }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } },
      [],
    ];
    for (const h of cases)
      expect(() => readSafetensors(withHeader(h, data), { errorCode: 'E_MODEL_INVALID' })).toThrow(
        expect.objectContaining({ code: 'E_MODEL_INVALID' }),
      );
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge)).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(() => readSafetensors(new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(() => readSafetensors(withHeader(ok, data), { maxBytes: 10 })).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
  });
});
