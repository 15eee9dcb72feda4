import { FirnError } from '@firn/core';
import {
  type Activation,
  finalActivation,
  type ModelDefinition,
  validateModelDefinition,
} from './modelDefinition.ts';
import { encodeOnnxModel, type OnnxNode, type OnnxTensor } from './onnxProto.ts';
import type { Preprocessing } from './train.ts';
import { weightsFromSafetensors } from './weights.ts';

export interface OnnxExportInput {
  definition: ModelDefinition | unknown;
  /** safetensors bytes named `layers.<i>.<kind>`, as trainModel returns them. */
  weights: Uint8Array;
  preprocessing: Preprocessing;
}

/** The ONNX graph's input and output names. */
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'output';

const f32 = (name: string, dims: number[], values: ArrayLike<number>): OnnxTensor => ({
  name,
  dims,
  dtype: 'float',
  data: Float32Array.from(values),
});

/**
 * Export a trained sequential model to an ONNX ModelProto (IR 8, opset 13): standardisation as the
 * first ops (Sub, Div), then the layers in inference mode (dropout is the identity, batch norm uses
 * its moving statistics), ending in class probabilities for classification. Convolution and pooling
 * layers are refused with E_UNSUPPORTED; raw input is float32 [N, features], named `input`, output `output`.
 */
export function exportOnnx(m: OnnxExportInput): Uint8Array {
  const { definition: def, shapes } = validateModelDefinition(m.definition);
  const weights = weightsFromSafetensors(m.weights, shapes);
  const pre = m.preprocessing;
  const features = def.inputShape.reduce((a, b) => a * b, 1);
  if (
    pre.features !== features ||
    pre.standardize.mean.length !== features ||
    pre.standardize.std.length !== features
  )
    throw new FirnError(
      'E_MODEL_INVALID',
      `preprocessing is for ${pre.features} features, the model takes ${features}`,
    );
  if (def.inputShape.length !== 1)
    throw new FirnError(
      'E_UNSUPPORTED',
      `ONNX export supports vector inputs only, the model takes [${def.inputShape.join(', ')}]`,
    );

  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [
    f32('preprocess.mean', [features], pre.standardize.mean),
    f32('preprocess.std', [features], pre.standardize.std),
  ];
  let n = 0;
  const fresh = (hint: string): string => `${hint}_${n++}`;
  let cur = fresh('sub');
  nodes.push({ opType: 'Sub', inputs: [ONNX_INPUT, 'preprocess.mean'], outputs: [cur] });
  const std = fresh('standardized');
  nodes.push({ opType: 'Div', inputs: [cur, 'preprocess.std'], outputs: [std] });
  cur = std;
  let constants = false;
  const constant = (): void => {
    if (constants) return;
    constants = true;
    inits.push(f32('const.one', [], [1]), f32('const.half', [], [0.5]), f32('const.sqrt2', [], [Math.SQRT2]));
  };

  const activation = (a: Activation, x: string): string => {
    const one = (opType: string, attributes?: OnnxNode['attributes']): string => {
      const y = fresh(opType.toLowerCase());
      nodes.push({ opType, inputs: [x], outputs: [y], ...(attributes ? { attributes } : {}) });
      return y;
    };
    switch (a) {
      case 'linear':
        return x;
      case 'relu':
        return one('Relu');
      case 'sigmoid':
        return one('Sigmoid');
      case 'tanh':
        return one('Tanh');
      case 'softmax':
        return one('Softmax', [{ name: 'axis', kind: 'int', value: -1 }]);
      case 'elu':
        return one('Elu', [{ name: 'alpha', kind: 'float', value: 1 }]);
      case 'selu':
        // ONNX's default alpha and gamma are the SELU constants tfjs uses.
        return one('Selu');
      case 'softplus':
        return one('Softplus');
      case 'softsign':
        return one('Softsign');
      case 'gelu': {
        // Exact GELU, as tfjs computes it: x * 0.5 * (1 + erf(x / sqrt(2))).
        constant();
        const d = fresh('gelu_div');
        const e = fresh('gelu_erf');
        const s = fresh('gelu_add');
        const m1 = fresh('gelu_mul');
        const y = fresh('gelu');
        nodes.push(
          { opType: 'Div', inputs: [x, 'const.sqrt2'], outputs: [d] },
          { opType: 'Erf', inputs: [d], outputs: [e] },
          { opType: 'Add', inputs: [e, 'const.one'], outputs: [s] },
          { opType: 'Mul', inputs: [x, s], outputs: [m1] },
          { opType: 'Mul', inputs: [m1, 'const.half'], outputs: [y] },
        );
        return y;
      }
    }
  };

  def.layers.forEach((l, i) => {
    const w = (kind: string): string => {
      const name = `layers.${i}.${kind}`;
      const spec = shapes.weights.find((s) => s.name === name)!;
      inits.push(f32(name, spec.shape, weights[name]!));
      return name;
    };
    switch (l.type) {
      case 'dense': {
        const mm = fresh(`dense${i}_matmul`);
        nodes.push({ opType: 'MatMul', inputs: [cur, w('kernel')], outputs: [mm] });
        cur = mm;
        if (l.useBias !== false) {
          const add = fresh(`dense${i}_add`);
          nodes.push({ opType: 'Add', inputs: [cur, w('bias')], outputs: [add] });
          cur = add;
        }
        cur = activation(l.activation ?? 'linear', cur);
        break;
      }
      case 'dropout':
      case 'flatten':
        // Identity at inference time (flatten of a vector changes nothing).
        break;
      case 'batchNormalization': {
        const y = fresh(`batchnorm${i}`);
        nodes.push({
          opType: 'BatchNormalization',
          inputs: [cur, w('gamma'), w('beta'), w('movingMean'), w('movingVariance')],
          outputs: [y],
          attributes: [{ name: 'epsilon', kind: 'float', value: l.epsilon ?? 0.001 }],
        });
        cur = y;
        break;
      }
      case 'activation':
        cur = activation(l.activation, cur);
        break;
      default:
        throw new FirnError('E_UNSUPPORTED', `ONNX export does not support layer ${i} (${l.type})`, {
          details: { layer: i },
        });
    }
  });

  let outCols = shapes.outputShape[0]!;
  if (def.loss === 'binaryCrossentropy' && finalActivation(def) === 'sigmoid') {
    // A single sigmoid unit becomes the two class probabilities [1 - p, p].
    constant();
    const q = fresh('one_minus_p');
    nodes.push({ opType: 'Sub', inputs: ['const.one', cur], outputs: [q] });
    const c = fresh('probabilities');
    nodes.push({
      opType: 'Concat',
      inputs: [q, cur],
      outputs: [c],
      attributes: [{ name: 'axis', kind: 'int', value: 1 }],
    });
    cur = c;
    outCols = 2;
  }
  nodes.push({ opType: 'Identity', inputs: [cur], outputs: [ONNX_OUTPUT] });

  return encodeOnnxModel(
    {
      name: 'firn_sequential',
      nodes,
      initializers: inits,
      inputs: [{ name: ONNX_INPUT, elemType: 'float', shape: ['N', features] }],
      outputs: [{ name: ONNX_OUTPUT, elemType: 'float', shape: ['N', outCols] }],
    },
    {
      docString: pre.task === 'classification' ? 'output: class probabilities' : 'output: regression values',
      metadata: {
        'firn.task': pre.task,
        'firn.preprocessing': JSON.stringify(pre),
        ...(pre.labels ? { 'firn.labels': JSON.stringify(pre.labels) } : {}),
      },
    },
  );
}

/** Bytes of `n` as a protobuf varint. */
const varintLength = (n: number): number => (n < 0x80 ? 1 : 1 + varintLength(Math.floor(n / 0x80)));

function writeVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

/** Bytes a ModelProto.metadata_props entry {key, value of `spaces` spaces} adds, with its tag and length. */
function padEntryLength(key: string, spaces: number): number {
  const entry = 1 + varintLength(key.length) + key.length + 1 + varintLength(spaces) + spaces;
  return 1 + varintLength(entry) + entry;
}

/** The metadata key that `padOnnxModel` adds (its value is spaces only). */
export const ONNX_PAD_KEY = 'firn.pad';

/** One metadata_props entry {key, value of `spaces` spaces}, tag and length included. */
function padEntry(key: string, spaces: number): Uint8Array {
  const head: number[] = [0x72]; // field 14 (metadata_props), length-delimited
  writeVarint(head, 1 + varintLength(key.length) + key.length + 1 + varintLength(spaces) + spaces);
  head.push(0x0a); // StringStringEntryProto.key
  writeVarint(head, key.length);
  for (const c of key) head.push(c.charCodeAt(0));
  head.push(0x12); // StringStringEntryProto.value
  writeVarint(head, spaces);
  const out = new Uint8Array(head.length + spaces).fill(0x20);
  out.set(head, 0);
  return out;
}

/** One entry of exactly `gap` bytes (a key of ONNX_PAD_KEY and up to two dots), or undefined. */
function padEntryOf(gap: number): Uint8Array | undefined {
  for (const key of [ONNX_PAD_KEY, `${ONNX_PAD_KEY}.`, `${ONNX_PAD_KEY}..`])
    for (let spaces = Math.max(0, gap - 32); spaces <= gap; spaces++)
      if (padEntryLength(key, spaces) === gap) return padEntry(key, spaces);
  return undefined;
}

/**
 * `model` (a serialised ModelProto) made exactly `target` bytes long by appending metadata_props
 * entries {key: ONNX_PAD_KEY (or it and one or two dots), value: spaces}. Appending a field to a
 * serialised protobuf message is the same message with that field added (fields merge), so the
 * model loads and runs as before. Used where the model's size would otherwise tell its metadata's
 * contents (docs/decisions/1851-first-party-outputs-sized-by-shape.md). One entry cannot be every
 * length (an entry of 128 bytes costs 131 with its tag and length, so 130 is none): then a first,
 * empty entry of 14 bytes and a second of the rest. Throws E_INVALID_INPUT when `target` leaves
 * under 14 bytes of room.
 */
export function padOnnxModel(model: Uint8Array, target: number): Uint8Array {
  const gap = target - model.length;
  const empty = padEntry(ONNX_PAD_KEY, 0);
  const one = padEntryOf(gap);
  const rest = one === undefined && gap >= 2 * empty.length ? padEntryOf(gap - empty.length) : undefined;
  const parts = one !== undefined ? [one] : rest !== undefined ? [empty, rest] : undefined;
  if (parts === undefined)
    throw new FirnError(
      'E_INVALID_INPUT',
      `an ONNX model of ${model.length} bytes cannot be padded to ${target}`,
    );
  const out = new Uint8Array(target);
  out.set(model, 0);
  let at = model.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
