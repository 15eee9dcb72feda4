import { readFileSync } from 'node:fs';
import { NodeApi, type RunJobOptions, runJob, type SealedInput, sealInput } from '@firn/client';
import { parseWorkProofJson, sharedPath } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { loadOnnxModel, mlpDefinition, parseCsv, readSafetensors, trainModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJobFailure } from '../helpers/expectJobFailure.ts';
import type { TrainingReport } from '../../packages/enclave/src/jobs/workloads/training.ts';
import { runTrainingDemo, splitCsvLines } from '../../packages/cli/src/devnet/demo/trainingDemo.ts';
import { filesUnder, requesterOptions, startTestNetwork, type TestNetwork } from './network.ts';

// Confidential training through the market: a real anvil, a real enclave process, verifiers.
// Checks quality (held-out accuracy of the exported model, also through confidential inference),
// bit-equality with a plaintext run, typed failures with intact artifacts, and that no plaintext
// of the dataset or the weights reaches the host's logs, storage or the bytes it relays.
// Not covered: regression and safetensors datasets (unit tests), a host that tampers (faults.test.ts).
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
/** Every request and response body exchanged over HTTP by this process (node API and RPC). */
const relayed: Buffer[] = [];
const realFetch = globalThis.fetch;

const HEADER_CANARY = 'variance_c4n4ry_71939';
const { train, test } = splitCsvLines(
  readFileSync(sharedPath('datasets', 'banknote_authentication.csv'), 'utf8'),
  0.2,
  5,
);
const trainCsv = [`${HEADER_CANARY},skewness,curtosis,entropy,class`, ...train.map((l) => l.trim())].join(
  '\n',
);
const enc = (s: string) => new TextEncoder().encode(s);
const PARAMS = {
  task: 'classification',
  hidden: [16, 8],
  epochs: 25,
  batchSize: 32,
  seed: 7,
  validationSplit: 0.2,
};

beforeAll(async () => {
  globalThis.fetch = async (input, init) => {
    const body = init?.body;
    if (typeof body === 'string') relayed.push(Buffer.from(body));
    else if (body instanceof Uint8Array) relayed.push(Buffer.from(body));
    else if (body instanceof ArrayBuffer) relayed.push(Buffer.from(new Uint8Array(body)));
    const res = await realFetch(input, init);
    // Read a copy to the end (SSE included) without disturbing the caller's stream.
    const copy = res.clone();
    void copy.arrayBuffer().then(
      (b) => relayed.push(Buffer.from(b)),
      () => undefined,
    );
    return res;
  };
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
}, 120_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

function base(inputs: RunJobOptions['inputs'], extra: Partial<RunJobOptions> = {}): RunJobOptions {
  return {
    ...requesterOptions(net, kem),
    kind: 'training',
    inputs,
    params: PARAMS,
    escrow: 10n ** 15n,
    ...extra,
  };
}

const expectFailure = (opts: RunJobOptions, code: string) => expectJobFailure(net, opts, code);

function testRows() {
  const rows = test.map((l) => l.split(',').map(Number));
  return { rows, x: Float32Array.from(rows.flatMap((r) => r.slice(0, 4))), y: rows.map((r) => r[4]!) };
}

function argmaxAccuracy(p: ArrayLike<number>, classes: number, y: number[]): number {
  let hits = 0;
  y.forEach((label, i) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (p[i * classes + c]! > p[i * classes + best]!) best = c;
    if (best === label) hits++;
  });
  return hits / y.length;
}

let weights: Uint8Array | undefined;
let goodSealed: Uint8Array | undefined;

describe('confidential training end to end', () => {
  it('trains on banknote to >= 98% held-out accuracy with weights equal to a plaintext run; the ONNX export serves confidential inference', async () => {
    const events: Record<string, unknown>[] = [];
    const r = await runJob({
      ...base([{ role: 'dataset', bytes: enc(trainCsv), contentType: 'text/csv' }]),
      onProgress: (e) => events.push(e),
    });
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(r.outputs.map((o) => o.role)).toEqual(['weights', 'preprocessing', 'metrics', 'model', 'onnx']);
    const epochs = events.filter((e) => e['type'] === 'epoch');
    expect(epochs.map((e) => e['epoch'])).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const report = JSON.parse(new TextDecoder().decode(r.outputs[2]!.bytes)) as TrainingReport;
    expect(report.featureNames[0]).toBe(HEADER_CANARY);
    expect(parseWorkProofJson(r.proof).proof.workUnits).toBe(BigInt(report.train.rows * 25));

    // The same engine in plaintext, same data, definition and seed: bit-identical weights.
    const plain = await trainModel({
      definition: mlpDefinition({ inputSize: 4, hidden: [16, 8], task: 'classification', classes: 2 }),
      data: parseCsv(trainCsv, { task: 'classification' }),
      task: 'classification',
      epochs: 25,
      batchSize: 32,
      seed: 7,
      validationSplit: 0.2,
    });
    weights = r.outputs[0]!.bytes;
    expect(Buffer.from(weights).equals(Buffer.from(plain.weights))).toBe(true);

    // Held-out rows the node never saw, raw features into the exported graph.
    const { rows, x, y } = testRows();
    const onnx = await loadOnnxModel(r.outputs[4]!.bytes);
    const local = (await onnx.run({ input: { type: 'float32', dims: [rows.length, 4], data: x } }))[
      'output'
    ]!;
    const localAcc = argmaxAccuracy(local.data as Float32Array, 2, y);
    expect(localAcc).toBeGreaterThanOrEqual(0.98);

    const inf = await runJob({
      ...base([
        { role: 'model', bytes: r.outputs[4]!.bytes, contentType: 'application/onnx' },
        {
          role: 'input',
          bytes: enc(
            JSON.stringify({ input: { dims: [rows.length, 4], type: 'float32', data: Array.from(x) } }),
          ),
          contentType: 'application/json',
        },
      ]),
      kind: 'inference',
      params: {},
    });
    expect(inf.proofCheck.ok).toBe(true);
    const out = JSON.parse(new TextDecoder().decode(inf.outputs[0]!.bytes)).output as {
      dims: number[];
      data: number[];
    };
    expect(out.dims).toEqual([rows.length, 2]);
    expect(argmaxAccuracy(out.data, 2, y)).toBe(localAcc);
  });

  it('fails bad data, a missing target and an invalid model with typed errors; artifacts stay intact and a retry works', async () => {
    const api = new NodeApi(net.node.url);
    const intact = async (s: SealedInput) =>
      expect(Buffer.from(await api.getArtifact(s.artifactId)).equals(Buffer.from(s.sealed))).toBe(true);
    const cellCanary = '9137.55x';
    const badCsv = await sealInput(
      enc(`a,b,c,d,y\n1,2,3,4,0\n5,${cellCanary},7,8,1\n`),
      'text/csv',
      kem.publicKey,
    );
    const f1 = await expectFailure(base([{ role: 'dataset', sealed: badCsv }]), 'E_DATA_INVALID');
    expect(f1.message).not.toContain(cellCanary);
    await intact(badCsv);

    const good = await sealInput(enc(trainCsv), 'text/csv', kem.publicKey);
    goodSealed = good.sealed;
    await expectFailure(
      base([{ role: 'dataset', sealed: good }], { params: { ...PARAMS, target: 'no_such_column' } }),
      'E_DATA_INVALID',
    );
    await intact(good);
    const badModel = await sealInput(
      enc(JSON.stringify({ format: 'firn.sequential/v1', inputShape: [4], layers: [] })),
      'application/json',
      kem.publicKey,
    );
    const { hidden: _h, ...noHidden } = PARAMS;
    await expectFailure(
      base(
        [
          { role: 'dataset', sealed: good },
          { role: 'model', sealed: badModel },
        ],
        { params: noHidden },
      ),
      'E_MODEL_INVALID',
    );
    await intact(good);

    // The same uploaded dataset trains once the params are right.
    const retry = await runJob(
      base([{ role: 'dataset', sealed: good }], { params: { ...PARAMS, epochs: 2 } }),
    );
    expect(retry.proofCheck.ok).toBe(true);
  });

  it('runs the devnet training demo: loss curve, then confidential inference with the exported model', async () => {
    const der = Buffer.from(net.roots.simulated[0]!).toString('base64');
    const pem = `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
    const lines: string[] = [];
    const r = await runTrainingDemo(
      {
        rpcUrl: net.anvil.rpcUrl,
        chainId: net.deployment.chainId,
        contracts: net.deployment,
        deployBlock: net.deployment.deployBlock.toString(),
        simulatedRootPem: pem,
        measurement: '0x',
        nodes: [],
        verifiers: [],
        accounts: { requester: net.requester },
      },
      (l) => lines.push(l),
    );
    expect(r.losses).toHaveLength(20);
    expect(r.losses[19]!).toBeLessThan(r.losses[0]!);
    expect(r.heldOutRows).toBe(274);
    expect(r.heldOutAccuracy).toBeGreaterThanOrEqual(0.98);
    expect(r.proofsVerified).toBe(true);
    expect(lines.filter((l) => /^ +\d+ \d+\.\d{4} #*$/.test(l))).toHaveLength(20);
  });

  it('leaks no plaintext of the dataset or the weights into host logs, storage or relayed bytes', async () => {
    expect(weights).toBeDefined();
    await new Promise((r) => setTimeout(r, 200)); // let the last response copies finish
    const w = readSafetensors(weights!);
    const kernel = w.tensors['layers.0.kernel']!.data as Float32Array;
    const needles: [string, Buffer][] = [
      ['header canary', Buffer.from(HEADER_CANARY)],
      ...train.slice(0, 5).map((l, i): [string, Buffer] => [`dataset row ${i}`, Buffer.from(l.trim())]),
      ['weights (raw float32)', Buffer.from(kernel.buffer, kernel.byteOffset, 32)],
      ['first weight as text', Buffer.from(String(kernel[0]))],
    ];
    const haystacks: [string, Buffer][] = [
      ['node logs', Buffer.from(net.logs.join('\n'))],
      ...filesUnder(net.dataDir).map((p): [string, Buffer] => [`storage ${p}`, readFileSync(p)]),
      ...relayed.map((b, i): [string, Buffer] => [`relayed #${i}`, b]),
    ];
    expect(relayed.length).toBeGreaterThan(10);
    expect(haystacks.length).toBeGreaterThan(relayed.length + 3);
    const found: string[] = [];
    for (const [nName, needle] of needles)
      for (const [hName, hay] of haystacks) if (hay.includes(needle)) found.push(`${nName} in ${hName}`);
    expect(found).toEqual([]);
    // Positive controls: the capture holds the sealed uploads, the encrypted event streams and the
    // decrypted weights' needle is really in the weights (so a leak would be found).
    expect(relayed.some((b) => goodSealed !== undefined && b.equals(Buffer.from(goodSealed)))).toBe(true);
    expect(relayed.some((b) => b.includes('event: end'))).toBe(true);
    expect(Buffer.from(weights!).includes(needles[6]![1])).toBe(true);
    expect(net.logs.length).toBeGreaterThan(0);
  });
});
