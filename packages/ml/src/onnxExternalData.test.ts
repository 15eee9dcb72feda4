import { describe, expect, it } from 'vitest';
import { loadOnnxModel } from './inference.ts';
import { assertNoExternalData, MAX_ONNX_NESTING } from './onnxExternalData.ts';
import { encodeOnnxModel, type OnnxGraph, type OnnxTensor } from './onnxProto.ts';

// The attack: a model whose weights live in a side file (ONNX external data). onnxruntime would
// read that file from the host's disk, outside the input commitment, so the host could pick the
// weights. Every model here is built with the project's own ONNX writer.
const W: OnnxTensor = {
  name: 'W',
  dims: [3, 2],
  dtype: 'float',
  data: Float32Array.from([1, 2, 3, 4, 5, 6]),
};
const external = (t: OnnxTensor, location = 'weights.bin'): OnnxTensor => ({
  ...t,
  externalData: { location },
});

function linear(w: OnnxTensor): OnnxGraph {
  return {
    name: 'g',
    nodes: [{ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
    initializers: [w],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', 2] }],
  };
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
  return 'accepted';
};

describe('ONNX external data is refused before onnxruntime sees the model', () => {
  it('accepts the same model with embedded weights (positive control), which runs', async () => {
    const bytes = encodeOnnxModel(linear(W));
    expect(code(() => assertNoExternalData(bytes))).toBe('accepted');
    const m = await loadOnnxModel(bytes);
    const out = await m.run({ x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 1, 1]) } });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([9, 12]);
    await m.release();
  });

  it('refuses an external initializer with E_MODEL_INVALID, in the parser and in loadOnnxModel', async () => {
    const bytes = encodeOnnxModel(linear(external(W)));
    // Positive control: the bytes really carry the external-data location.
    expect(Buffer.from(bytes).includes('weights.bin')).toBe(true);
    expect(code(() => assertNoExternalData(bytes))).toMatch(/^E_MODEL_INVALID: .*external file/);
    await expect(loadOnnxModel(bytes)).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
      message: expect.stringMatching(/external file/),
    });
  });

  it('finds external data in a Constant attribute and in a subgraph initializer', () => {
    const constant: OnnxGraph = {
      ...linear(W),
      nodes: [
        {
          opType: 'Constant',
          inputs: [],
          outputs: ['K'],
          attributes: [{ name: 'value', kind: 'tensor', value: external(W) }],
        },
        { opType: 'MatMul', inputs: ['x', 'K'], outputs: ['y'] },
      ],
      initializers: [],
    };
    expect(code(() => assertNoExternalData(encodeOnnxModel(constant)))).toMatch(/^E_MODEL_INVALID/);
    const branch = (w: OnnxTensor): OnnxGraph => ({ ...linear(w), inputs: [] });
    const withIf = (w: OnnxTensor): OnnxGraph => ({
      ...linear(W),
      nodes: [
        {
          opType: 'If',
          inputs: ['c'],
          outputs: ['y'],
          attributes: [
            { name: 'then_branch', kind: 'graph', value: branch(W) },
            { name: 'else_branch', kind: 'graph', value: branch(w) },
          ],
        },
      ],
    });
    expect(code(() => assertNoExternalData(encodeOnnxModel(withIf(W))))).toBe('accepted');
    expect(code(() => assertNoExternalData(encodeOnnxModel(withIf(external(W)))))).toMatch(
      /^E_MODEL_INVALID/,
    );
  });

  it('refuses an external_data entry even without data_location, and malformed or too deep bytes', () => {
    const bytes = encodeOnnxModel(linear(external(W, 'x')));
    // Turn data_location (field 14, varint 1: bytes 0x70 0x01) into data_location = 0: external_data alone must still fail.
    const i = Buffer.from(bytes).indexOf(Buffer.from([0x70, 0x01]));
    expect(i).toBeGreaterThan(0);
    const patched = Uint8Array.from(bytes);
    patched[i + 1] = 0;
    expect(code(() => assertNoExternalData(patched))).toMatch(/^E_MODEL_INVALID: .*external/);
    expect(code(() => assertNoExternalData(bytes.subarray(0, bytes.length - 3)))).toMatch(/^E_MODEL_INVALID/);
    expect(code(() => assertNoExternalData(Uint8Array.of(0x0b)))).toMatch(/^E_MODEL_INVALID: .*wire type/);
    // Graph attributes nested past the cap: refused with a typed error, not a stack overflow.
    let g: OnnxGraph = linear(W);
    // Each If level nests graph > node > attribute > graph: three messages.
    for (let d = 0; d < Math.ceil(MAX_ONNX_NESTING / 3) + 1; d++)
      g = {
        ...linear(W),
        nodes: [
          {
            opType: 'If',
            inputs: ['c'],
            outputs: ['y'],
            attributes: [{ name: 'then_branch', kind: 'graph', value: g }],
          },
        ],
      };
    expect(code(() => assertNoExternalData(encodeOnnxModel(g)))).toMatch(/^E_MODEL_INVALID: .*deeper/);
  });
});
