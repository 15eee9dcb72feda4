import { FirnError } from '@firn/core';
import * as tf from '@tensorflow/tfjs';
import { applyStandardizer } from './dataset.ts';
import { finalActivation, type ModelDefinition, validateModelDefinition } from './modelDefinition.ts';
import { createPrng } from './prng.ts';
import { initTfBackend, type TfBackendName } from './tfBackend.ts';
import { buildTfModel } from './tfModel.ts';
import type { Preprocessing } from './train.ts';
import { weightsFromSafetensors } from './weights.ts';

export interface TrainedModel {
  definition: ModelDefinition | unknown;
  /** safetensors bytes as returned by trainModel. */
  weights: Uint8Array;
  preprocessing: Preprocessing;
}

/**
 * Predict with the TensorFlow.js engine on raw (unstandardised) rows: the same computation the
 * exported ONNX graph performs, so the two can be compared. Classification returns class
 * probabilities [rows, classes] (binary sigmoid heads give [1 - p, p]); regression the raw outputs.
 */
export async function predictWithTf(
  m: TrainedModel,
  x: Float32Array,
  rows: number,
  backend: TfBackendName = 'wasm',
): Promise<{ data: Float32Array; cols: number }> {
  const { definition, shapes } = validateModelDefinition(m.definition);
  const features = m.preprocessing.features;
  if (x.length !== rows * features)
    throw new FirnError('E_INPUT_INVALID', `x has ${x.length} values, expected ${rows} x ${features}`);
  const weights = weightsFromSafetensors(m.weights, shapes);
  await initTfBackend(backend);
  const model = buildTfModel(definition, shapes, weights, createPrng(0));
  try {
    const out = tf.tidy(() => {
      const xs = tf.tensor(applyStandardizer(x, features, m.preprocessing.standardize), [
        rows,
        ...definition.inputShape,
      ]);
      const p = model.predict(xs, { batchSize: 4096 }) as tf.Tensor;
      return definition.loss === 'binaryCrossentropy' && finalActivation(definition) === 'sigmoid'
        ? tf.concat([tf.sub(1, p), p], 1)
        : p;
    });
    const cols = out.shape[1] ?? 1;
    const data = Float32Array.from(out.dataSync() as Float32Array);
    out.dispose();
    return { data, cols };
  } finally {
    model.dispose();
  }
}
