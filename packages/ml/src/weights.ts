import { FirnError } from '@firn/core';
import type { ModelShapes } from './modelDefinition.ts';
import type { Prng } from './prng.ts';
import { readSafetensors, type SafeTensor, writeSafetensors } from './safetensors.ts';

/** Glorot-uniform kernels, zero biases, identity batch-norm state: drawn from the seeded generator. */
export function initialWeights(shapes: ModelShapes, rng: Prng): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = Object.create(null);
  for (const w of shapes.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    if (w.kind === 'kernel') {
      // Dense [in, out]; conv [...window, in, out]: the window multiplies both fans.
      const receptive = w.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const fanIn = w.shape[w.shape.length - 2]! * receptive;
      const fanOut = w.shape[w.shape.length - 1]! * receptive;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) a[i] = (rng.next() * 2 - 1) * limit;
    } else if (w.kind === 'gamma' || w.kind === 'movingVariance') a.fill(1);
    out[w.name] = a;
  }
  return out;
}

/**
 * Read initial weights from safetensors and check that they match the definition exactly: every
 * expected tensor present with its shape, nothing extra. Errors are E_MODEL_INVALID naming the tensor.
 */
export function weightsFromSafetensors(bytes: Uint8Array, shapes: ModelShapes): Record<string, Float32Array> {
  const f = readSafetensors(bytes, { errorCode: 'E_MODEL_INVALID' });
  const out: Record<string, Float32Array> = Object.create(null);
  const expected = new Set(shapes.weights.map((w) => w.name));
  for (const name of Object.keys(f.tensors))
    if (!expected.has(name))
      throw new FirnError('E_MODEL_INVALID', `weights: tensor ${name} is not part of the model`, {
        details: { tensor: name },
      });
  for (const w of shapes.weights) {
    const t: SafeTensor | undefined = f.tensors[w.name];
    if (!t)
      throw new FirnError('E_MODEL_INVALID', `weights: tensor ${w.name} is missing`, {
        details: { tensor: w.name },
      });
    if (t.shape.length !== w.shape.length || t.shape.some((d, i) => d !== w.shape[i]))
      throw new FirnError(
        'E_MODEL_INVALID',
        `weights: tensor ${w.name} has shape [${t.shape.join(', ')}], the model needs [${w.shape.join(', ')}]`,
        {
          details: { tensor: w.name },
        },
      );
    if (t.dtype !== 'F32' && t.dtype !== 'F64')
      throw new FirnError('E_MODEL_INVALID', `weights: tensor ${w.name} must be F32 or F64, got ${t.dtype}`, {
        details: { tensor: w.name },
      });
    const a = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array);
    for (let i = 0; i < a.length; i++)
      if (!Number.isFinite(a[i]!))
        throw new FirnError('E_MODEL_INVALID', `weights: tensor ${w.name} holds a non-finite value`, {
          details: { tensor: w.name },
        });
    out[w.name] = a;
  }
  return out;
}

/** Weights as safetensors bytes in the order of the definition, all F32. */
export function weightsToSafetensors(weights: Record<string, Float32Array>, shapes: ModelShapes): Uint8Array {
  return writeSafetensors(
    Object.fromEntries(
      shapes.weights.map((w) => [w.name, { dtype: 'F32' as const, shape: w.shape, data: weights[w.name]! }]),
    ),
    { format: 'firn.weights/v1' },
  );
}
