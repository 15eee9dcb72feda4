import { FirnError } from '@firn/core';

/** The format tag of a sequential model definition (docs/model-format.md). */
export const MODEL_FORMAT = 'firn.sequential/v1';

export const ACTIVATIONS = [
  'linear',
  'relu',
  'sigmoid',
  'tanh',
  'softmax',
  'elu',
  'selu',
  'gelu',
  'softplus',
  'softsign',
] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export const LOSSES = [
  'mse',
  'mae',
  'binaryCrossentropy',
  'categoricalCrossentropy',
  'sparseCategoricalCrossentropy',
] as const;
export type Loss = (typeof LOSSES)[number];

export type Padding = 'valid' | 'same';

export type LayerDefinition =
  | { type: 'dense'; units: number; activation?: Activation; useBias?: boolean }
  | { type: 'dropout'; rate: number }
  | { type: 'batchNormalization'; momentum?: number; epsilon?: number }
  | { type: 'activation'; activation: Activation }
  | { type: 'flatten' }
  | {
      type: 'conv1d';
      filters: number;
      kernelSize: number;
      strides?: number;
      padding?: Padding;
      activation?: Activation;
    }
  | {
      type: 'conv2d';
      filters: number;
      kernelSize: number | [number, number];
      strides?: number | [number, number];
      padding?: Padding;
      activation?: Activation;
    }
  | { type: 'maxPooling1d' | 'averagePooling1d'; poolSize?: number; strides?: number; padding?: Padding }
  | {
      type: 'maxPooling2d' | 'averagePooling2d';
      poolSize?: number | [number, number];
      strides?: number | [number, number];
      padding?: Padding;
    };

export type LayerType = LayerDefinition['type'];

export interface OptimizerDefinition {
  type: 'sgd' | 'adam';
  learningRate: number;
}

export interface ModelDefinition {
  format: typeof MODEL_FORMAT;
  /** Shape of one sample, without the batch dimension: [features], [steps, channels] or [h, w, c]. */
  inputShape: number[];
  layers: LayerDefinition[];
  loss: Loss;
  optimizer: OptimizerDefinition;
}

export type Task = 'classification' | 'regression';

/** One trainable or state tensor of a layer, named `layers.<index>.<kind>`. */
export interface WeightSpec {
  name: string;
  layer: number;
  kind: 'kernel' | 'bias' | 'gamma' | 'beta' | 'movingMean' | 'movingVariance';
  shape: number[];
}

export interface ModelShapes {
  /** Output shape of each layer (without batch). */
  layerOutputs: number[][];
  outputShape: number[];
  /** In the order tfjs reports a layer's weights. */
  weights: WeightSpec[];
  parameterCount: number;
}

export const MODEL_CAPS = { maxLayers: 64, maxDim: 1 << 16, maxRank: 3, maxParameters: 64 * 1024 * 1024 };

const LAYER_KEYS: Record<LayerType, readonly string[]> = {
  dense: ['units', 'activation', 'useBias'],
  dropout: ['rate'],
  batchNormalization: ['momentum', 'epsilon'],
  activation: ['activation'],
  flatten: [],
  conv1d: ['filters', 'kernelSize', 'strides', 'padding', 'activation'],
  conv2d: ['filters', 'kernelSize', 'strides', 'padding', 'activation'],
  maxPooling1d: ['poolSize', 'strides', 'padding'],
  averagePooling1d: ['poolSize', 'strides', 'padding'],
  maxPooling2d: ['poolSize', 'strides', 'padding'],
  averagePooling2d: ['poolSize', 'strides', 'padding'],
};

function invalid(path: string, message: string): FirnError {
  return new FirnError('E_MODEL_INVALID', `model definition ${path}: ${message}`, { details: { path } });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function posInt(v: unknown, path: string, max = MODEL_CAPS.maxDim): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
    throw invalid(path, `must be an integer in 1..${max}`);
  return v;
}

function pair(v: unknown, path: string): [number, number] {
  if (Array.isArray(v)) {
    if (v.length !== 2) throw invalid(path, 'must be an integer or a pair of integers');
    return [posInt(v[0], `${path}[0]`), posInt(v[1], `${path}[1]`)];
  }
  const n = posInt(v, path);
  return [n, n];
}

function outLen(size: number, k: number, s: number, padding: Padding, path: string): number {
  const n = padding === 'same' ? Math.ceil(size / s) : Math.floor((size - k) / s) + 1;
  if (n < 1) throw invalid(path, `window ${k} does not fit an input of size ${size}`);
  return n;
}

/**
 * Validate an untrusted model definition and compute every layer's shape and weight shapes. It
 * proves the definition is well formed and within caps; it does not prove that it trains well.
 */
export function validateModelDefinition(json: unknown): { definition: ModelDefinition; shapes: ModelShapes } {
  if (!isObject(json)) throw invalid('$', 'must be an object');
  for (const k of Object.keys(json))
    if (!['format', 'inputShape', 'layers', 'loss', 'optimizer'].includes(k))
      throw invalid(`$.${k}`, 'unknown field');
  if (json['format'] !== MODEL_FORMAT) throw invalid('$.format', `must be "${MODEL_FORMAT}"`);
  const inputShape = json['inputShape'];
  if (!Array.isArray(inputShape) || inputShape.length < 1 || inputShape.length > MODEL_CAPS.maxRank)
    throw invalid('$.inputShape', `must be an array of 1..${MODEL_CAPS.maxRank} dimensions`);
  inputShape.forEach((d, i) => {
    posInt(d, `$.inputShape[${i}]`);
  });
  const layers = json['layers'];
  if (!Array.isArray(layers) || layers.length < 1 || layers.length > MODEL_CAPS.maxLayers)
    throw invalid('$.layers', `must be an array of 1..${MODEL_CAPS.maxLayers} layers`);
  const loss = json['loss'];
  if (typeof loss !== 'string' || !LOSSES.includes(loss as Loss))
    throw invalid('$.loss', `must be one of ${LOSSES.join(', ')}`);
  const opt = json['optimizer'];
  if (!isObject(opt)) throw invalid('$.optimizer', 'must be an object');
  for (const k of Object.keys(opt))
    if (k !== 'type' && k !== 'learningRate') throw invalid(`$.optimizer.${k}`, 'unknown field');
  if (opt['type'] !== 'sgd' && opt['type'] !== 'adam')
    throw invalid('$.optimizer.type', 'must be "sgd" or "adam"');
  const lr = opt['learningRate'];
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0 || lr > 10)
    throw invalid('$.optimizer.learningRate', 'must be in (0, 10]');

  let shape = [...(inputShape as number[])];
  const layerOutputs: number[][] = [];
  const weights: WeightSpec[] = [];
  const clean: LayerDefinition[] = [];
  layers.forEach((l, i) => {
    const p = `$.layers[${i}]`;
    if (!isObject(l)) throw invalid(p, 'must be an object');
    const type = l['type'];
    if (typeof type !== 'string' || !(type in LAYER_KEYS))
      throw invalid(`${p}.type`, `unknown layer type ${String(type)}`);
    for (const k of Object.keys(l))
      if (k !== 'type' && !LAYER_KEYS[type as LayerType].includes(k))
        throw invalid(`${p}.${k}`, 'unknown field');
    const act = (key = 'activation', required = false): Activation | undefined => {
      const a = l[key];
      if (a === undefined && !required) return undefined;
      if (typeof a !== 'string' || !ACTIVATIONS.includes(a as Activation))
        throw invalid(`${p}.${key}`, `must be one of ${ACTIVATIONS.join(', ')}`);
      return a as Activation;
    };
    const padding = (): Padding => {
      const v = l['padding'] ?? 'valid';
      if (v !== 'valid' && v !== 'same') throw invalid(`${p}.padding`, 'must be "valid" or "same"');
      return v;
    };
    const w = (kind: WeightSpec['kind'], s: number[]): void => {
      weights.push({ name: `layers.${i}.${kind}`, layer: i, kind, shape: s });
    };
    const rank = (n: number): void => {
      if (shape.length !== n)
        throw invalid(p, `${type} needs an input of rank ${n} (without batch), got [${shape.join(', ')}]`);
    };
    switch (type as LayerType) {
      case 'dense': {
        rank(1);
        const units = posInt(l['units'], `${p}.units`);
        const useBias = l['useBias'] ?? true;
        if (typeof useBias !== 'boolean') throw invalid(`${p}.useBias`, 'must be a boolean');
        const a = act();
        w('kernel', [shape[0]!, units]);
        if (useBias) w('bias', [units]);
        shape = [units];
        clean.push({ type: 'dense', units, useBias, ...(a ? { activation: a } : {}) });
        break;
      }
      case 'dropout': {
        const rate = l['rate'];
        if (typeof rate !== 'number' || !(rate >= 0 && rate < 1))
          throw invalid(`${p}.rate`, 'must be in [0, 1)');
        clean.push({ type: 'dropout', rate });
        break;
      }
      case 'batchNormalization': {
        const momentum = l['momentum'] ?? 0.99;
        const epsilon = l['epsilon'] ?? 0.001;
        if (typeof momentum !== 'number' || !(momentum >= 0 && momentum < 1))
          throw invalid(`${p}.momentum`, 'must be in [0, 1)');
        if (typeof epsilon !== 'number' || !(epsilon > 0 && epsilon < 1))
          throw invalid(`${p}.epsilon`, 'must be in (0, 1)');
        const c = shape[shape.length - 1]!;
        for (const k of ['gamma', 'beta', 'movingMean', 'movingVariance'] as const) w(k, [c]);
        clean.push({ type: 'batchNormalization', momentum, epsilon });
        break;
      }
      case 'activation':
        clean.push({ type: 'activation', activation: act('activation', true)! });
        break;
      case 'flatten':
        shape = [shape.reduce((a, b) => a * b, 1)];
        clean.push({ type: 'flatten' });
        break;
      case 'conv1d': {
        rank(2);
        const filters = posInt(l['filters'], `${p}.filters`);
        const k = posInt(l['kernelSize'], `${p}.kernelSize`);
        const s = posInt(l['strides'] ?? 1, `${p}.strides`);
        const pad = padding();
        const a = act();
        w('kernel', [k, shape[1]!, filters]);
        w('bias', [filters]);
        shape = [outLen(shape[0]!, k, s, pad, p), filters];
        clean.push({
          type: 'conv1d',
          filters,
          kernelSize: k,
          strides: s,
          padding: pad,
          ...(a ? { activation: a } : {}),
        });
        break;
      }
      case 'conv2d': {
        rank(3);
        const filters = posInt(l['filters'], `${p}.filters`);
        const k = pair(l['kernelSize'], `${p}.kernelSize`);
        const s = pair(l['strides'] ?? 1, `${p}.strides`);
        const pad = padding();
        const a = act();
        w('kernel', [k[0], k[1], shape[2]!, filters]);
        w('bias', [filters]);
        shape = [outLen(shape[0]!, k[0], s[0], pad, p), outLen(shape[1]!, k[1], s[1], pad, p), filters];
        clean.push({
          type: 'conv2d',
          filters,
          kernelSize: k,
          strides: s,
          padding: pad,
          ...(a ? { activation: a } : {}),
        });
        break;
      }
      case 'maxPooling1d':
      case 'averagePooling1d': {
        rank(2);
        const k = posInt(l['poolSize'] ?? 2, `${p}.poolSize`);
        const s = posInt(l['strides'] ?? k, `${p}.strides`);
        const pad = padding();
        shape = [outLen(shape[0]!, k, s, pad, p), shape[1]!];
        clean.push({ type: type as 'maxPooling1d', poolSize: k, strides: s, padding: pad });
        break;
      }
      case 'maxPooling2d':
      case 'averagePooling2d': {
        rank(3);
        const k = pair(l['poolSize'] ?? 2, `${p}.poolSize`);
        const s = l['strides'] === undefined ? k : pair(l['strides'], `${p}.strides`);
        const pad = padding();
        shape = [outLen(shape[0]!, k[0], s[0], pad, p), outLen(shape[1]!, k[1], s[1], pad, p), shape[2]!];
        clean.push({ type: type as 'maxPooling2d', poolSize: k, strides: s, padding: pad });
        break;
      }
    }
    layerOutputs.push([...shape]);
  });
  let parameterCount = 0;
  for (const w of weights) parameterCount += w.shape.reduce((a, b) => a * b, 1);
  if (parameterCount > MODEL_CAPS.maxParameters)
    throw invalid('$.layers', `${parameterCount} parameters, over the cap of ${MODEL_CAPS.maxParameters}`);
  const definition: ModelDefinition = {
    format: MODEL_FORMAT,
    inputShape: [...(inputShape as number[])],
    layers: clean,
    loss: loss as Loss,
    optimizer: { type: opt['type'], learningRate: lr },
  };
  checkHead(definition, shape);
  return { definition, shapes: { layerOutputs, outputShape: shape, weights, parameterCount } };
}

/** The task a loss implies. */
export function taskOf(loss: Loss): Task {
  return loss === 'mse' || loss === 'mae' ? 'regression' : 'classification';
}

/** The activation applied last (a trailing dense/conv activation or activation layer), skipping dropout. */
export function finalActivation(def: ModelDefinition): Activation {
  for (let i = def.layers.length - 1; i >= 0; i--) {
    const l = def.layers[i]!;
    if (l.type === 'dropout') continue;
    if (l.type === 'activation') return l.activation;
    if (l.type === 'dense' || l.type === 'conv1d' || l.type === 'conv2d') return l.activation ?? 'linear';
    return 'linear';
  }
  return 'linear';
}

// Classification must end in probabilities: softmax over the classes, or one sigmoid unit for binary.
function checkHead(def: ModelDefinition, out: number[]): void {
  if (taskOf(def.loss) === 'regression') {
    if (out.length !== 1)
      throw invalid('$.layers', `regression output must be a vector, got [${out.join(', ')}]`);
    return;
  }
  const act = finalActivation(def);
  if (out.length !== 1)
    throw invalid('$.layers', `classification output must be a vector, got [${out.join(', ')}]`);
  if (def.loss === 'binaryCrossentropy') {
    if (act !== 'sigmoid' || out[0] !== 1)
      throw invalid('$.loss', 'binaryCrossentropy needs a final single sigmoid unit');
  } else if (act !== 'softmax' || out[0]! < 2) {
    throw invalid('$.loss', `${def.loss} needs a final softmax over at least 2 classes`);
  }
}

export interface MlpOptions {
  inputSize: number;
  hidden?: number[];
  task: Task;
  /** Number of classes (classification) or of regression targets (default 1). */
  classes?: number;
  outputs?: number;
  activation?: Activation;
  dropout?: number;
  batchNorm?: boolean;
  optimizer?: 'sgd' | 'adam';
  learningRate?: number;
}

/** A multilayer perceptron definition: hidden dense layers, then softmax (classification) or linear (regression). */
export function mlpDefinition(o: MlpOptions): ModelDefinition {
  const layers: LayerDefinition[] = [];
  for (const units of o.hidden ?? [32, 16]) {
    layers.push({ type: 'dense', units, activation: o.activation ?? 'relu' });
    if (o.batchNorm) layers.push({ type: 'batchNormalization' });
    if (o.dropout) layers.push({ type: 'dropout', rate: o.dropout });
  }
  const classification = o.task === 'classification';
  layers.push(
    classification
      ? { type: 'dense', units: o.classes ?? 2, activation: 'softmax' }
      : { type: 'dense', units: o.outputs ?? 1, activation: 'linear' },
  );
  const def: ModelDefinition = {
    format: MODEL_FORMAT,
    inputShape: [o.inputSize],
    layers,
    loss: classification ? 'sparseCategoricalCrossentropy' : 'mse',
    optimizer: { type: o.optimizer ?? 'adam', learningRate: o.learningRate ?? 0.01 },
  };
  return validateModelDefinition(def).definition;
}
