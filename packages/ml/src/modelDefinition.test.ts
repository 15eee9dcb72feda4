import { describe, expect, it } from 'vitest';
import { mlpDefinition, MODEL_FORMAT, validateModelDefinition } from './modelDefinition.ts';

// Definition validation and shape inference. Not covered: training behaviour (see train.test.ts).
const base = {
  format: MODEL_FORMAT,
  inputShape: [28, 28, 1],
  layers: [
    { type: 'conv2d', filters: 8, kernelSize: 3, activation: 'relu' },
    { type: 'maxPooling2d', poolSize: 2 },
    { type: 'batchNormalization' },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.2 },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  loss: 'categoricalCrossentropy',
  optimizer: { type: 'adam', learningRate: 0.001 },
};

describe('validateModelDefinition', () => {
  it('infers shapes and weight names', () => {
    const { shapes } = validateModelDefinition(base);
    expect(shapes.layerOutputs).toEqual([[26, 26, 8], [13, 13, 8], [13, 13, 8], [1352], [1352], [10]]);
    expect(shapes.weights.map((w) => `${w.name}:${w.shape.join('x')}`)).toEqual([
      'layers.0.kernel:3x3x1x8',
      'layers.0.bias:8',
      'layers.2.gamma:8',
      'layers.2.beta:8',
      'layers.2.movingMean:8',
      'layers.2.movingVariance:8',
      'layers.5.kernel:1352x10',
      'layers.5.bias:10',
    ]);
    expect(shapes.parameterCount).toBe(3 * 3 * 8 + 8 + 32 + 13520 + 10);
  });

  it('names the JSON path of what is wrong', () => {
    const bad = (patch: (d: typeof base) => unknown, path: string) =>
      expect(() => validateModelDefinition(patch(structuredClone(base)))).toThrow(
        expect.objectContaining({ code: 'E_MODEL_INVALID', details: { path } }),
      );
    bad((d) => ({ ...d, format: 'x' }), '$.format');
    bad((d) => ({ ...d, inputShape: [0] }), '$.inputShape[0]');
    bad((d) => ({ ...d, layers: [{ type: 'lstm' }] }), '$.layers[0].type');
    bad((d) => ({ ...d, layers: [d.layers[0], { type: 'dense', units: 1.5 }] }), '$.layers[1]'); // rank error first
    bad((d) => ({ ...d, inputShape: [4], layers: [{ type: 'dense', units: 1.5 }] }), '$.layers[0].units');
    bad(
      (d) => ({ ...d, inputShape: [4], layers: [{ type: 'dense', units: 2, activation: 'swish' }] }),
      '$.layers[0].activation',
    );
    bad(
      (d) => ({ ...d, inputShape: [4], layers: [{ type: 'dense', units: 2, extra: 1 }] }),
      '$.layers[0].extra',
    );
    bad((d) => ({ ...d, layers: [{ type: 'dropout', rate: 1 }] }), '$.layers[0].rate');
    bad((d) => ({ ...d, loss: 'hinge' }), '$.loss');
    bad((d) => ({ ...d, optimizer: { type: 'rmsprop', learningRate: 0.1 } }), '$.optimizer.type');
    bad((d) => ({ ...d, optimizer: { type: 'sgd', learningRate: -1 } }), '$.optimizer.learningRate');
    bad(
      (d) => ({
        ...d,
        layers: d.layers.slice(0, 4).concat({ type: 'dense', units: 10, activation: 'relu' }),
      }),
      '$.loss',
    );
    bad(
      (d) => ({ ...d, inputShape: [2, 1], layers: [{ type: 'conv1d', filters: 1, kernelSize: 3 }] }),
      '$.layers[0]',
    );
    bad(
      (d) => ({
        ...d,
        inputShape: [4096],
        layers: [
          { type: 'dense', units: 65536 },
          { type: 'dense', units: 2, activation: 'softmax' },
        ],
      }),
      '$.layers',
    );
    bad(() => [], '$');
  });

  it('builds MLP definitions', () => {
    const c = mlpDefinition({ inputSize: 4, hidden: [32, 16], task: 'classification', classes: 3 });
    expect(c.layers.map((l) => l.type)).toEqual(['dense', 'dense', 'dense']);
    expect(c.loss).toBe('sparseCategoricalCrossentropy');
    expect(mlpDefinition({ inputSize: 11, task: 'regression' }).loss).toBe('mse');
  });
});
