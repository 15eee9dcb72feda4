import { encodeOnnxModel } from '@firn/ml/formats';

/**
 * A small real ONNX model for job tests: y = x · W + b with x float32 [N, inFeatures] and
 * y float32 [N, outFeatures]. Weights are deterministic from `seed`; `docString` and `metadata`
 * let a test plant a marker inside the model bytes.
 */
export function tinyLinearModel(
  opts: {
    inFeatures?: number;
    outFeatures?: number;
    seed?: number;
    docString?: string;
    metadata?: Record<string, string>;
  } = {},
): { bytes: Uint8Array; weights: Float32Array; bias: Float32Array; inFeatures: number; outFeatures: number } {
  const inF = opts.inFeatures ?? 3;
  const outF = opts.outFeatures ?? 2;
  const seed = opts.seed ?? 1;
  const weights = Float32Array.from({ length: inF * outF }, (_v, i) => Math.sin(seed * 7.1 + i * 1.3));
  const bias = Float32Array.from({ length: outF }, (_v, i) => Math.cos(seed * 3.7 + i));
  const bytes = encodeOnnxModel(
    {
      name: 'firn_tiny_linear',
      nodes: [
        { opType: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] },
        { opType: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
      ],
      initializers: [
        { name: 'W', dims: [inF, outF], dtype: 'float', data: weights },
        { name: 'b', dims: [outF], dtype: 'float', data: bias },
      ],
      inputs: [{ name: 'x', elemType: 'float', shape: ['N', inF] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N', outF] }],
    },
    {
      ...(opts.docString === undefined ? {} : { docString: opts.docString }),
      ...(opts.metadata === undefined ? {} : { metadata: opts.metadata }),
    },
  );
  return { bytes, weights, bias, inFeatures: inF, outFeatures: outF };
}

/** The expected output of tinyLinearModel computed in float64 (compare with a small tolerance). */
export function tinyLinearReference(
  m: { weights: Float32Array; bias: Float32Array; inFeatures: number; outFeatures: number },
  x: number[],
  rows: number,
): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < m.outFeatures; o++) {
      let s = m.bias[o]!;
      for (let i = 0; i < m.inFeatures; i++)
        s += x[r * m.inFeatures + i]! * m.weights[i * m.outFeatures + o]!;
      out.push(s);
    }
  return out;
}
