import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Hex, paddedLength, parsePaddedContentType, sharedPath, unpadPlaintext } from '@firn/core';
import { loadOnnxModel, mlpDefinition } from '@firn/ml';
import { describe, expect, it } from 'vitest';
import { trainingWorkload } from '../../../enclave/src/jobs/workloads/training.ts';
import {
  createProgressRenderer,
  MAX_PLAIN_EPOCH_LINES,
  type OutStream,
  planTraining,
  runTrain,
  type TrainOptions,
  type TrainRunJob,
  type TrainRunJobOptions,
} from './train.ts';

// The command's core with a stand-in for the SDK's runJob that runs the training workload in
// process on the plaintext inputs. Not covered here: the network, sealing, attestation and the
// chain (tests/e2e/training.test.ts runs the real path).
const IRIS = sharedPath('datasets', 'iris.csv');
const JOB_ID = `0x${'ab'.repeat(32)}` as Hex;
const dir = mkdtempSync(join(tmpdir(), 'firn-train-'));
const devnetFile = join(dir, 'devnet.json');
const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
writeFileSync(
  devnetFile,
  JSON.stringify({
    rpcUrl: 'http://127.0.0.1:1',
    chainId: 31337,
    contracts: { registry: addr(1), verifierSet: addr(2), jobMarket: addr(3), dataLedger: addr(4) },
    deployBlock: 1,
    accounts: { requester: { address: addr(5), privateKey: `0x${'01'.repeat(32)}` } },
  }),
);

function sink(isTTY = false): OutStream & { text: string } {
  const s = {
    text: '',
    isTTY,
    write(x: string) {
      s.text += x;
      return true;
    },
  };
  return s;
}

function fakeRunJob(seen: TrainRunJobOptions[], proofOk = true): TrainRunJob {
  return async (o) => {
    seen.push(o);
    const r = await trainingWorkload({
      params: o.params,
      // As the enclave does (decision 1852): a padded input reaches the workload without its padding.
      inputs: o.inputs.map((i) => {
        const p = parsePaddedContentType(i.contentType);
        return {
          ...i,
          contentType: p.contentType,
          bytes: p.padded ? unpadPlaintext(i.bytes) : i.bytes,
          artifactId: JOB_ID,
        };
      }),
      progress: (e) => o.onProgress?.(e),
      now: () => 0,
    });
    return {
      jobId: JOB_ID,
      node: {
        endpoint: 'http://node',
        enclaveId: JOB_ID,
        enclaveAddress: addr(9) as Hex,
        measurement: JOB_ID,
      },
      outputs: r.outputs,
      proof: { proof: { jobId: JOB_ID, workUnits: r.workUnits }, signature: '0x' },
      proofCheck: proofOk
        ? { ok: true, reasons: [] }
        : { ok: false, reasons: ['signature does not recover'] },
    };
  };
}

const base = (over: Partial<TrainOptions>): TrainOptions => ({
  data: IRIS,
  out: join(dir, 'model'),
  devnet: devnetFile,
  seed: '1',
  ...over,
});

describe('firn train', () => {
  it('plans params and inputs from the command line', () => {
    const p = planTraining(
      base({
        target: '4',
        hidden: '8,4',
        epochs: '3',
        batchSize: '16',
        lr: '0.02',
        validationSplit: '0.2',
        header: 'no',
      }),
    );
    expect(p.params).toEqual({
      task: 'classification',
      target: 4,
      header: false,
      hidden: [8, 4],
      epochs: 3,
      batchSize: 16,
      learningRate: 0.02,
      seed: 1,
      validationSplit: 0.2,
    });
    expect(p.inputs.map((i) => [i.role, i.contentType])).toEqual([['dataset', 'text/csv']]);
    const model = join(dir, 'reg.json');
    writeFileSync(model, JSON.stringify(mlpDefinition({ inputSize: 3, hidden: [4], task: 'regression' })));
    const q = planTraining(base({ model, target: '3', precheck: false }));
    expect(q.task).toBe('regression');
    expect(q.inputs.map((i) => i.role)).toEqual(['dataset', 'model']);
  });

  it('refuses bad arguments and bad data locally, before any job', () => {
    const code = (o: TrainOptions) => {
      try {
        planTraining(o);
      } catch (e) {
        return (e as { code: string }).code;
      }
      return 'ok';
    };
    expect(code(base({ target: 'species' }))).toBe('E_DATA_INVALID'); // no header in iris.csv
    expect(code(base({ target: '7' }))).toBe('E_DATA_INVALID');
    expect(code(base({ task: 'regression' }))).toBe('E_DATA_INVALID'); // string labels
    expect(code(base({ hidden: '8,x' }))).toBe('E_INVALID_INPUT');
    expect(code(base({ epochs: '0' }))).toBe('E_INVALID_INPUT');
    expect(code(base({ lr: '-1' }))).toBe('E_INVALID_INPUT');
    expect(code(base({ weights: 'w.safetensors' }))).toBe('E_INVALID_INPUT');
    expect(code(base({ data: join(dir, 'missing.csv') }))).toBe('E_NOT_FOUND');
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'a,b,y\n1,2,x\n3,,y\n');
    expect(code(base({ data: bad }))).toBe('E_DATA_INVALID');
    expect(code(base({ data: bad, precheck: false }))).toBe('ok');
  });

  it('runs the job, prints a bounded epoch summary off a terminal (not a line per epoch), and fills MODEL_DIR', async () => {
    const seen: TrainRunJobOptions[] = [];
    const stdout = sink();
    const stderr = sink();
    const out = join(dir, 'iris');
    const rc = await runTrain(base({ out, hidden: '16', epochs: '30', batchSize: '16' }), {
      runJob: fakeRunJob(seen),
      stdout,
      stderr,
    });
    expect(stderr.text).toBe('');
    expect(rc).toBe(0);
    expect(seen[0]!.kind).toBe('training');
    expect(seen[0]!.requesterKey).toBe(`0x${'01'.repeat(32)}`);
    expect(seen[0]!.policy.allowSimulated).toBe(true);
    expect(seen[0]!.deployment.jobMarket).toBe(addr(3));
    // The dataset is sealed padded to its Padmé bucket (decision 1855): the host sees the bucket.
    const iris = readFileSync(IRIS);
    expect(seen[0]!.inputs[0]!.contentType).toBe('text/csv; firn-pad=padme');
    expect(seen[0]!.inputs[0]!.bytes.length).toBe(paddedLength(iris.length));
    const epochLines = stdout.text.split('\n').filter((l) => l.startsWith('epoch '));
    // 30 epochs: epoch 1, every third, and the last; never one line per epoch.
    expect(epochLines.length).toBeLessThanOrEqual(MAX_PLAIN_EPOCH_LINES + 1);
    expect(epochLines.length).toBeGreaterThan(1);
    expect(epochLines[epochLines.length - 1]).toMatch(
      /^epoch 30\/30 loss \d+\.\d{4} val_loss \d+\.\d{4} val_acc \d+\.\d%$/,
    );
    expect(stdout.text).toContain('held-out accuracy');
    for (const f of [
      'weights.safetensors',
      'preprocessing.json',
      'metrics.json',
      'model.json',
      'model.onnx',
      'README.md',
      'proof.json',
    ])
      expect(existsSync(join(out, f))).toBe(true);
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    expect(readme).toContain('0. column0');
    expect(readme).toContain('2. Iris-virginica');
    // The exported model takes raw rows as `input`.
    const onnx = await loadOnnxModel(new Uint8Array(readFileSync(join(out, 'model.onnx'))));
    const o = await onnx.run({
      input: { type: 'float32', dims: [1, 4], data: Float32Array.from([5.1, 3.5, 1.4, 0.2]) },
    });
    expect(o['output']!.dims).toEqual([1, 3]);
  });

  it('--no-pad seals the files at their exact sizes', async () => {
    const seen: TrainRunJobOptions[] = [];
    const rc = await runTrain(base({ out: join(dir, 'nopad'), hidden: '4', epochs: '1', pad: false }), {
      runJob: fakeRunJob(seen),
      stdout: sink(),
      stderr: sink(),
    });
    expect(rc).toBe(0);
    expect(seen[0]!.inputs[0]!.contentType).toBe('text/csv');
    expect(seen[0]!.inputs[0]!.bytes.length).toBe(readFileSync(IRIS).length);
  });

  it('prints JSON with --json (progress on stderr) and exits 2 when the proof does not verify', async () => {
    const stdout = sink();
    const stderr = sink();
    const proof = join(dir, 'PROOF.json');
    const rc = await runTrain(base({ out: join(dir, 'j'), hidden: '4', epochs: '2', json: true, proof }), {
      runJob: fakeRunJob([], false),
      stdout,
      stderr,
    });
    expect(rc).toBe(2);
    const j = JSON.parse(stdout.text) as {
      jobId: string;
      report: { history: unknown[] };
      proof: { ok: boolean };
    };
    expect(j.jobId).toBe(JOB_ID);
    expect(j.report.history).toHaveLength(2);
    expect(j.proof.ok).toBe(false);
    expect(stderr.text).toContain('epoch 2/2');
    expect(stderr.text).toContain('E_PROOF_INVALID');
    // Nothing unverified reaches the disk: neither the model dir nor the proof file.
    expect(existsSync(proof)).toBe(false);
    expect(existsSync(join(dir, 'j'))).toBe(false);
  });

  it('reports a typed failure from the job as an error', async () => {
    const stdout = sink();
    const stderr = sink();
    const failing: TrainRunJob = async () => {
      throw Object.assign(new Error('CSV: row 3 column b is missing'), { code: 'E_DATA_INVALID' });
    };
    const rc = await runTrain(base({ out: join(dir, 'f'), json: true }), { runJob: failing, stdout, stderr });
    // E_DATA_INVALID: fix the input (exit code 3, README "Exit codes").
    expect(rc).toBe(3);
    expect(JSON.parse(stdout.text)).toEqual({
      error: { code: 'E_DATA_INVALID', message: 'CSV: row 3 column b is missing' },
    });
  });

  it('redraws one progress bar on a terminal', () => {
    const s = sink(true);
    const r = createProgressRenderer(s);
    r.onEvent({ type: 'epoch', epoch: 1, epochs: 4, loss: 0.5, valLoss: 0.6 });
    r.onEvent({ type: 'status', text: 'ignored' });
    r.onEvent({ type: 'epoch', epoch: 4, epochs: 4, loss: 0.25, valLoss: 0.3, valAccuracy: 0.9 });
    r.done();
    // One bar, redrawn in place (cursor to column 1), finished with a single newline.
    expect(s.text).toContain(
      'epoch 4/4 [========================] loss 0.2500 val_loss 0.3000 val_acc 90.0%',
    );
    expect(s.text.split('\n')).toHaveLength(2);
    expect(s.text.endsWith('\n')).toBe(true);
  });

  it('off a terminal, 1500 epochs print at most a bounded summary', () => {
    const s = sink(false);
    const r = createProgressRenderer(s);
    for (let epoch = 1; epoch <= 1500; epoch++)
      r.onEvent({ type: 'epoch', epoch, epochs: 1500, loss: 1, valLoss: 1 });
    r.done();
    const lines = s.text.split('\n').filter((l) => l.length > 0);
    expect(lines.length).toBeLessThanOrEqual(MAX_PLAIN_EPOCH_LINES + 1);
    expect(lines[lines.length - 1]).toMatch(/^epoch 1500\/1500 /);
  });

  it('a lost node and its replacement are shown as lines, even on a terminal', () => {
    const s = sink(true);
    const r = createProgressRenderer(s);
    r.onEvent({ type: 'epoch', epoch: 1, epochs: 4, loss: 0.5, valLoss: 0.6 });
    r.onEvent({ stage: 'node-lost', node: 'http://127.0.0.1:1', reason: 'E_UNAVAILABLE', claimLapsesAt: 1 });
    r.onEvent({ stage: 'reassigning', lostJobId: '0xab', reclaimed: true, attempt: 2, maxNodes: 3 });
    r.done();
    expect(s.text).toContain('node http://127.0.0.1:1 lost (E_UNAVAILABLE)');
    expect(s.text).toContain('job 0xab reclaimed; retrying on another node (attempt 2 of 3)');
  });

  it('--patience needs a validation split', () => {
    expect(() =>
      planTraining({ data: IRIS, out: join(dir, 'p'), patience: '3', validationSplit: '0' } as TrainOptions),
    ).toThrow(/--patience needs --validation-split/);
    expect(
      planTraining({ data: IRIS, out: join(dir, 'p'), patience: '3' } as TrainOptions).params['patience'],
    ).toBe(3);
  });
});
