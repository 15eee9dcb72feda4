import { readFileSync } from 'node:fs';
import { type Hex, sharedPath } from '@firn/core';
import {
  loadOnnxModel,
  mlpDefinition,
  parseCsv,
  predictWithTf,
  readSafetensors,
  trainModel,
  validateModelDefinition,
  weightsToSafetensors,
  writeSafetensors,
} from '@firn/ml';
import { describe, expect, it } from 'vitest';
import type { BasicWorkloadContext, WorkloadInput, WorkloadResult } from '../workload.ts';
import { sniffDelimiter } from '@firn/ml';
import { defaultEpochs, type TrainingReport, trainingWorkload } from './training.ts';

// The workload called in process with plaintext inputs (no channel, no sealing: those are the
// framework's and are covered by the e2e test). Not covered: conv models, multi-GB datasets.
const banknoteCsv = new Uint8Array(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')));
const irisCsv = new Uint8Array(readFileSync(sharedPath('datasets', 'iris.csv')));
const enc = (s: string) => new TextEncoder().encode(s);
const ID = `0x${'11'.repeat(32)}` as Hex;

function input(role: string, bytes: Uint8Array, contentType = 'text/csv'): WorkloadInput {
  return { role, artifactId: ID, contentType, bytes };
}

async function run(
  params: Record<string, unknown>,
  inputs: WorkloadInput[],
): Promise<{ r: WorkloadResult; events: Record<string, unknown>[] }> {
  const events: Record<string, unknown>[] = [];
  const ctx: BasicWorkloadContext = {
    params,
    inputs,
    progress: (e) => events.push(e),
    now: () => 1_700_000_000,
  };
  return { r: await trainingWorkload(ctx), events };
}

const out = (r: WorkloadResult, role: string) => {
  const o = r.outputs.find((x) => x.role === role);
  if (!o) throw new Error(`no output ${role}`);
  return o;
};
const outJson = <T>(r: WorkloadResult, role: string): T =>
  JSON.parse(new TextDecoder().decode(out(r, role).bytes)) as T;

async function rejects(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('trainingWorkload', () => {
  it('gives weights bit-equal to a plaintext trainModel run with the same seed, and a consistent report', async () => {
    const params = {
      task: 'classification',
      target: 'last',
      hidden: [16, 8],
      epochs: 4,
      batchSize: 32,
      learningRate: 0.01,
      seed: 7,
      validationSplit: 0.25,
    };
    const { r, events } = await run(params, [input('dataset', banknoteCsv)]);
    const data = parseCsv(banknoteCsv, { task: 'classification' });
    const plain = await trainModel({
      definition: mlpDefinition({ inputSize: 4, hidden: [16, 8], task: 'classification', classes: 2 }),
      data,
      task: 'classification',
      epochs: 4,
      batchSize: 32,
      learningRate: 0.01,
      seed: 7,
      validationSplit: 0.25,
    });
    expect(Buffer.from(out(r, 'weights').bytes).equals(Buffer.from(plain.weights))).toBe(true);
    expect(outJson(r, 'preprocessing')).toEqual(plain.preprocessing);
    expect(r.workUnits).toBe(BigInt(plain.workUnits));
    expect(r.workUnits).toBe(BigInt(plain.metrics.trainRows * 4));
    expect(r.outputs.map((o) => [o.role, o.contentType])).toEqual([
      ['weights', 'application/safetensors'],
      ['preprocessing', 'application/json'],
      ['metrics', 'application/json'],
      ['model', 'application/json'],
      ['onnx', 'application/onnx'],
    ]);
    expect(events.map((e) => [e['type'], e['epoch'], e['epochs']])).toEqual(
      [1, 2, 3, 4].map((i) => ['epoch', i, 4]),
    );
    expect(events[3]!['loss']).toBe(plain.metrics.history[3]!.loss);
    expect(events[3]!['valAccuracy']).toBe(plain.metrics.history[3]!.metrics.valAccuracy);
    const report = outJson<TrainingReport>(r, 'metrics');
    expect(report.heldOut).toEqual({
      rows: 343,
      loss: plain.metrics.valLoss,
      accuracy: plain.metrics.valAccuracy,
    });
    expect(report.featureNames).toEqual(['column0', 'column1', 'column2', 'column3']);
    expect(report.labels).toEqual(['0', '1']);
    expect(report.workUnits).toBe(String(plain.workUnits));
    expect(report.onnx).toMatchObject({
      exported: true,
      input: 'input',
      output: 'output',
      inputShape: [null, 4],
    });
    expect(validateModelDefinition(outJson(r, 'model')).definition).toEqual(plain.definition);
    // The ONNX graph takes raw rows and agrees with the tfjs engine.
    const onnx = await loadOnnxModel(out(r, 'onnx').bytes);
    const rows = 20;
    const x = data.x.subarray(0, rows * 4);
    const o = (await onnx.run({ input: { type: 'float32', dims: [rows, 4], data: x } }))['output']!;
    const tfp = await predictWithTf(plain, x, rows);
    const probs = o.data as Float32Array;
    for (let i = 0; i < probs.length; i++) expect(probs[i]).toBeCloseTo(tfp.data[i]!, 5);
  });

  it('reads headers, string labels, another delimiter and a named target; default hyperparameters', async () => {
    const text = new TextDecoder().decode(irisCsv).trim().split('\n');
    const csv = enc(
      [
        'species;sepal_l;sepal_w;petal_l;petal_w',
        ...text.map((l) => {
          const f = l.split(',');
          return [f[4], ...f.slice(0, 4)].join(';');
        }),
      ].join('\n'),
    );
    const { r, events } = await run({ task: 'classification', target: 'species', epochs: 60, seed: 3 }, [
      input('dataset', csv),
    ]);
    const report = outJson<TrainingReport>(r, 'metrics');
    expect(report.labels).toEqual(['Iris-setosa', 'Iris-versicolor', 'Iris-virginica']);
    expect(report.featureNames).toEqual(['sepal_l', 'sepal_w', 'petal_l', 'petal_w']);
    expect(report.params).toMatchObject({
      delimiter: ';',
      batchSize: 32,
      hidden: [64, 32],
      validationSplit: 0.1,
    });
    expect(events).toHaveLength(60);
    expect(report.heldOut.rows).toBe(15);
    expect(report.heldOut.accuracy).toBeGreaterThanOrEqual(0.8);
    expect(sniffDelimiter(enc('a\tb\tc\n1\t2\t3'))).toBe('\t');
    expect(sniffDelimiter(enc('"a;b",c,d\n'))).toBe(',');
  });

  it('scales regression targets during training and folds the scale back into the output layer', async () => {
    // y = 1000 * (x0 - 2 x1) + 50000: large raw targets that unscaled training with lr 0.01 would not reach.
    const lines = ['x0,x1,price'];
    let s = 12345;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    for (let i = 0; i < 400; i++) {
      const a = rnd() * 4;
      const b = rnd() * 4;
      lines.push(`${a.toFixed(4)},${b.toFixed(4)},${(1000 * (a - 2 * b) + 50000).toFixed(2)}`);
    }
    const { r } = await run(
      { task: 'regression', target: 'price', hidden: [16], epochs: 40, seed: 1, validationSplit: 0.2 },
      [input('dataset', enc(lines.join('\n')))],
    );
    const report = outJson<TrainingReport>(r, 'metrics');
    expect(report.params.scaleTarget).toBe(true);
    expect(report.targetScale!.mean[0]).toBeGreaterThan(40000);
    expect(report.heldOut.rmse).toBeLessThan(300); // targets span about 12000
    const onnx = await loadOnnxModel(out(r, 'onnx').bytes);
    const o = await onnx.run({ input: { type: 'float32', dims: [1, 2], data: Float32Array.from([3, 1]) } });
    expect(Math.abs((o['output']!.data as Float32Array)[0]! - 51000)).toBeLessThan(600);
  });

  it('reads a safetensors dataset (x, y) with class indices', async () => {
    const data = parseCsv(irisCsv, { task: 'classification' });
    const st = writeSafetensors({
      x: { dtype: 'F32', shape: [data.rows, data.cols], data: data.x },
      y: { dtype: 'F32', shape: [data.rows], data: data.y },
    });
    const { r } = await run({ task: 'classification', hidden: [8], epochs: 3, seed: 2 }, [
      input('dataset', st, 'application/safetensors'),
    ]);
    const report = outJson<TrainingReport>(r, 'metrics');
    expect(report.featureNames).toEqual(['x0', 'x1', 'x2', 'x3']);
    expect(report.labels).toBeUndefined();
    expect(report.history).toHaveLength(3);
    expect(validateModelDefinition(outJson(r, 'model')).shapes.outputShape).toEqual([3]);
    expect(
      (
        await rejects(
          run({ task: 'classification' }, [input('dataset', st.subarray(0, 20), 'application/safetensors')]),
        )
      ).code,
    ).toBe('E_DATA_INVALID');
  });

  it('trains a given model definition from given initial weights', async () => {
    const def = mlpDefinition({ inputSize: 4, hidden: [8], task: 'classification', classes: 2 });
    const { shapes } = validateModelDefinition(def);
    const w0 = weightsToSafetensors(
      Object.fromEntries(
        shapes.weights.map((w) => [w.name, new Float32Array(w.shape.reduce((a, b) => a * b, 1)).fill(0.05)]),
      ),
      shapes,
    );
    const params = { task: 'classification', epochs: 2, batchSize: 64, seed: 5, validationSplit: 0.2 };
    const { r } = await run(params, [
      input('dataset', banknoteCsv),
      input('model', enc(JSON.stringify(def)), 'application/json'),
      input('weights', w0, 'application/safetensors'),
    ]);
    const plain = await trainModel({
      definition: def,
      initialWeights: w0,
      data: parseCsv(banknoteCsv, { task: 'classification' }),
      task: 'classification',
      epochs: 2,
      batchSize: 64,
      seed: 5,
      validationSplit: 0.2,
    });
    expect(Buffer.from(out(r, 'weights').bytes).equals(Buffer.from(plain.weights))).toBe(true);
    expect(Object.keys(readSafetensors(out(r, 'weights').bytes).tensors).sort()).toEqual(
      shapes.weights.map((w) => w.name).sort(),
    );
  });

  it('refuses bad input with typed errors before training, without quoting data values', async () => {
    let epochs = 0;
    const ctx = (params: Record<string, unknown>, inputs: WorkloadInput[]): BasicWorkloadContext => ({
      params,
      inputs,
      progress: () => epochs++,
      now: () => 0,
    });
    const bad = async (params: Record<string, unknown>, inputs: WorkloadInput[]) =>
      rejects(trainingWorkload(ctx({ epochs: 2, ...params }, inputs)));
    const secretCell = 'SECRET-CANARY-7391';
    const e1 = await bad({ task: 'classification' }, [
      input('dataset', enc(`a,b,y\n1,2,0\n3,${secretCell},1\n`)),
    ]);
    expect(e1.code).toBe('E_DATA_INVALID');
    expect(e1.message).not.toContain(secretCell);
    expect(
      (await bad({ task: 'classification' }, [input('dataset', enc('a,b,y\n1,,0\n3,4,1\n'))])).code,
    ).toBe('E_DATA_INVALID');
    expect(
      (await bad({ task: 'classification', target: 'nope' }, [input('dataset', banknoteCsv)])).code,
    ).toBe('E_DATA_INVALID');
    expect((await bad({ task: 'classification', target: 9 }, [input('dataset', banknoteCsv)])).code).toBe(
      'E_DATA_INVALID',
    );
    const badModel = { format: 'firn.sequential/v1', inputShape: [4], layers: [{ type: 'dense', units: 0 }] };
    expect(
      (
        await bad({ task: 'classification' }, [
          input('dataset', banknoteCsv),
          input('model', enc(JSON.stringify(badModel)), 'application/json'),
        ])
      ).code,
    ).toBe('E_MODEL_INVALID');
    expect(
      (
        await bad({ task: 'classification' }, [
          input('dataset', banknoteCsv),
          input('model', enc('{'), 'application/json'),
        ])
      ).code,
    ).toBe('E_MODEL_INVALID');
    const def = mlpDefinition({ inputSize: 4, hidden: [8], task: 'classification', classes: 2 });
    const wrong = mlpDefinition({ inputSize: 4, hidden: [9], task: 'classification', classes: 2 });
    const ws = validateModelDefinition(wrong).shapes;
    const wrongWeights = weightsToSafetensors(
      Object.fromEntries(
        ws.weights.map((w) => [w.name, new Float32Array(w.shape.reduce((a, b) => a * b, 1))]),
      ),
      ws,
    );
    const e6 = await bad({ task: 'classification' }, [
      input('dataset', banknoteCsv),
      input('model', enc(JSON.stringify(def)), 'application/json'),
      input('weights', wrongWeights, 'application/safetensors'),
    ]);
    expect(e6.code).toBe('E_MODEL_INVALID');
    expect(e6.message).toContain('layers.0.kernel');
    expect((await bad({}, [input('dataset', banknoteCsv)])).code).toBe('E_JOB_INVALID');
    expect((await bad({ task: 'classification', lr: 1 }, [input('dataset', banknoteCsv)])).code).toBe(
      'E_JOB_INVALID',
    );
    expect((await bad({ task: 'classification' }, [input('model', enc('{}'))])).code).toBe('E_JOB_INVALID');
    expect(
      (await bad({ task: 'classification' }, [input('dataset', banknoteCsv), input('x', enc(''))])).code,
    ).toBe('E_JOB_INVALID');
    expect(epochs).toBe(0);
  });

  it('picks default epochs from the data size', () => {
    expect(defaultEpochs(135, 32)).toBe(300);
    expect(defaultEpochs(1235, 32)).toBe(103);
    expect(defaultEpochs(100_000, 128)).toBe(10);
    expect(defaultEpochs(2_000_000, 128)).toBe(1);
  });
});
