import { describe, expect, it } from 'vitest';
import { loadOnnxModel } from './inference.ts';
import { ONNX_PAD_KEY, padOnnxModel } from './onnxExport.ts';
import { encodeOnnxModel } from './onnxProto.ts';

// docs/decisions/1851-first-party-outputs-sized-by-shape.md: an exported model is padded to a
// size bucket with one appended metadata entry; it must load and run as before.
const model = (meta: string) =>
  encodeOnnxModel(
    {
      name: 'g',
      nodes: [{ opType: 'Mul', inputs: ['x', 'k'], outputs: ['y'] }],
      initializers: [{ name: 'k', dims: [1], dtype: 'float', data: Float32Array.of(3) }],
      inputs: [{ name: 'x', elemType: 'float', shape: ['N'] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N'] }],
    },
    { metadata: { 'firn.labels': meta } },
  );

describe('padOnnxModel', () => {
  it('reaches every target 16 bytes or more past the model, exactly', () => {
    const m = model('["a","b"]');
    // Around every varint boundary of the entry (127/128, 16383/16384 bytes) and in between.
    const gaps = [16, 17, 40, 120, 125, 126, 127, 128, 129, 130, 131, 140, 200, 5000];
    for (let g = 16_360; g <= 16_400; g++) gaps.push(g);
    for (const gap of gaps) {
      const padded = padOnnxModel(m, m.length + gap);
      expect(padded.length).toBe(m.length + gap);
      expect(Buffer.from(padded.subarray(0, m.length)).equals(Buffer.from(m))).toBe(true);
    }
    for (let g = 14; g <= 300; g++) expect(padOnnxModel(m, m.length + g).length).toBe(m.length + g);
    expect(() => padOnnxModel(m, m.length + 5)).toThrow(/cannot be padded/);
  });

  it('pads two models whose metadata differ in length to one size, and both still run', async () => {
    const short = model('["x","y"]');
    const long = model('["xxxxxxx","yyyyyyy"]');
    const a = padOnnxModel(short, 4096);
    const b = padOnnxModel(long, 4096);
    expect(a.length).toBe(b.length);
    for (const bytes of [a, b]) {
      const m = await loadOnnxModel(bytes);
      try {
        const out = await m.run({ x: { type: 'float32', dims: [2], data: Float32Array.of(1, 2) } });
        expect(Array.from(out.y!.data as Float32Array)).toEqual([3, 6]);
      } finally {
        await m.release();
      }
    }
    expect(Buffer.from(a).includes(Buffer.from(ONNX_PAD_KEY))).toBe(true);
  });
});
