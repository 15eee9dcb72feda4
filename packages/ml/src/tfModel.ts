import * as tf from '@tensorflow/tfjs';
import type { Activation, ModelDefinition, ModelShapes, Padding, WeightSpec } from './modelDefinition.ts';
import type { Prng } from './prng.ts';

type Kwargs = Record<string, unknown>;

/**
 * Dropout whose masks come from the job's seeded generator. tfjs's own Dropout either draws from
 * an unseeded source or, given a seed, repeats the same mask on every step.
 */
class SeededDropout extends tf.layers.Layer {
  static readonly className = 'FirnSeededDropout';
  private readonly rate: number;
  private readonly rng: Prng;
  constructor(rate: number, rng: Prng) {
    super({});
    this.rate = rate;
    this.rng = rng;
  }
  override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return shape;
  }
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs['training'] !== true || this.rate === 0) return x;
    const keep = 1 - this.rate;
    const mask = new Float32Array(x.size);
    for (let i = 0; i < mask.length; i++) mask[i] = this.rng.next() < keep ? 1 / keep : 0;
    return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape)));
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}

/** tfjs arguments of a 1-D or 2-D convolution, with the definition's defaults (stride 1, valid, linear). */
function convArgs<K>(l: {
  filters: number;
  kernelSize: K;
  strides?: K;
  padding?: Padding;
  activation?: Activation;
}) {
  return {
    filters: l.filters,
    kernelSize: l.kernelSize,
    strides: l.strides ?? 1,
    padding: l.padding ?? 'valid',
    activation: l.activation ?? 'linear',
  };
}

/** tfjs arguments of a 1-D or 2-D pooling, with the definition's defaults (pool 2, stride = pool, valid). */
function poolArgs<K>(l: { poolSize?: K; strides?: K; padding?: Padding }) {
  return {
    poolSize: l.poolSize ?? 2,
    strides: l.strides ?? l.poolSize ?? 2,
    padding: l.padding ?? 'valid',
  };
}

/** Build the tfjs model for a validated definition and load the given weights into it. */
export function buildTfModel(
  def: ModelDefinition,
  shapes: ModelShapes,
  weights: Record<string, Float32Array>,
  rng: Prng,
): tf.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.inputLayer({ inputShape: def.inputShape }));
  // tfjs's initialisers draw from an unseeded source; every weight is overwritten below anyway.
  const init = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;
  def.layers.forEach((l) => {
    switch (l.type) {
      case 'dense':
        model.add(
          tf.layers.dense({
            units: l.units,
            useBias: l.useBias ?? true,
            activation: l.activation ?? 'linear',
            ...init,
          }),
        );
        break;
      case 'dropout':
        model.add(new SeededDropout(l.rate, rng.fork()));
        break;
      case 'batchNormalization':
        model.add(
          tf.layers.batchNormalization({ momentum: l.momentum ?? 0.99, epsilon: l.epsilon ?? 0.001 }),
        );
        break;
      case 'activation':
        model.add(tf.layers.activation({ activation: l.activation }));
        break;
      case 'flatten':
        model.add(tf.layers.flatten());
        break;
      case 'conv1d':
        model.add(tf.layers.conv1d({ ...convArgs(l), ...init }));
        break;
      case 'conv2d':
        model.add(tf.layers.conv2d({ ...convArgs(l), ...init }));
        break;
      case 'maxPooling1d':
        model.add(tf.layers.maxPooling1d(poolArgs(l)));
        break;
      case 'averagePooling1d':
        model.add(tf.layers.averagePooling1d(poolArgs(l)));
        break;
      case 'maxPooling2d':
        model.add(tf.layers.maxPooling2d(poolArgs(l)));
        break;
      case 'averagePooling2d':
        model.add(tf.layers.averagePooling2d(poolArgs(l)));
        break;
    }
  });
  setTfWeights(model, shapes, weights);
  return model;
}

function byLayer(shapes: ModelShapes): Map<number, WeightSpec[]> {
  const m = new Map<number, WeightSpec[]>();
  for (const w of shapes.weights) m.set(w.layer, [...(m.get(w.layer) ?? []), w]);
  return m;
}

// model.layers may start with the input layer; definition layer i is counted from the end.
function tfLayer(model: tf.Sequential, shapes: ModelShapes, i: number): tf.layers.Layer {
  return model.layers[model.layers.length - shapes.layerOutputs.length + i]!;
}

export function setTfWeights(
  model: tf.Sequential,
  shapes: ModelShapes,
  weights: Record<string, Float32Array>,
): void {
  for (const [i, specs] of byLayer(shapes)) {
    const tensors = specs.map((s) => tf.tensor(weights[s.name]!, s.shape));
    tfLayer(model, shapes, i).setWeights(tensors);
    tf.dispose(tensors);
  }
}

/** Read every weight back from the tfjs model (batch-norm moving statistics included). */
export function getTfWeights(model: tf.Sequential, shapes: ModelShapes): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = Object.create(null);
  for (const [i, specs] of byLayer(shapes)) {
    const ws = tfLayer(model, shapes, i).getWeights();
    specs.forEach((s, k) => {
      out[s.name] = Float32Array.from(ws[k]!.dataSync() as Float32Array);
    });
  }
  return out;
}
