import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildJobRequest, jobCommitments, openOutput, sealInput } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { paddedContentType, padPlaintext } from '@firn/client';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { parseTensorMap } from '@firn/ml';
import { encodeOnnxModel } from '@firn/ml/formats';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

// Attack (malicious host): a batch inference job on the first-party image. The host stores the
// sealed output and records its size (the `runJob` answer, the job record, the file on its disk).
// The inference workload wrote the output as `tensorMapToJson`: every value in its shortest
// decimal form, whose length depends on the value (0 is "0", 0.30000001192092896 is 19
// characters). So the sealed output's size tells the host how many of the model's outputs are
// "round": here, through a ReLU, how many of the requester's inputs are negative. Decision 1735
// made session answers fixed-width for exactly this reason; the batch job's output was left as is.
// The training workload's JSON outputs (preprocessing, metrics, model) were pretty JSON as it
// was: their sizes told the length of the requester's class labels and feature names and the digit
// count of every mean, deviation and loss.
const root = mkdtempSync(join(tmpdir(), 'firn-attack-infer-len-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
let sup: EnclaveSupervisor | undefined;
afterAll(async () => {
  await sup?.stop();
});

const reluNamed = (y: string) =>
  encodeOnnxModel({
    name: 'relu',
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: [y] }],
    initializers: [],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', 4] }],
    outputs: [{ name: y, elemType: 'float', shape: ['N', 4] }],
  });
const relu = reluNamed('y');

/** The enclave process, started once for both cases. */
async function enclave() {
  if (sup === undefined) {
    sup = new EnclaveSupervisor({
      bundlePath: image.entry,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      logger: createLogger({}, { write: () => undefined }),
      restart: false,
    });
    sup.start();
    await sup.ready();
    identity = await sup.call<{ enclaveId: Hex; kemPublicKey: Hex; enclaveAddress: Hex }>('init', {});
  }
  return { sup, identity: identity! };
}
let identity: { enclaveId: Hex; kemPublicKey: Hex; enclaveAddress: Hex } | undefined;
const requester = generateSigningKey();
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };

/**
 * One job as a requester posts it and the host runs it: `inputs` sealed to the requester, granted
 * to the enclave. Returns what the host sees of each output (its sealed size, by role) and the
 * opened outputs.
 */
async function job(kind: string, params: Record<string, unknown>, plain: [string, Uint8Array, string][]) {
  const { sup, identity } = await enclave();
  const dir = mkdtempSync(join(root, 'job-'));
  const sealed = await Promise.all(plain.map(([, bytes, type]) => sealInput(bytes, type, kem.publicKey)));
  for (const s of sealed) writeFileSync(join(dir, s.artifactId.slice(2)), s.sealed);
  const inputs = plain.map(([role], k) => ({
    role,
    artifactId: sealed[k]!.artifactId,
    dataKey: sealed[k]!.dataKey,
  }));
  const now = Math.floor(Date.now() / 1000);
  const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const built = await buildJobRequest({
    jobId,
    kind,
    inputs,
    params,
    requesterKey: bytesToHex(requester.privateKey),
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: now + 600,
    grantIssuedAt: now - 60,
  });
  const r = await sup.call<{ outputs: { role: string; path: string; size: number }[] }>('runJob', {
    jobId,
    enc: built.body.enc,
    request: built.body.ciphertext,
    inputPaths: Object.fromEntries(sealed.map((s) => [s.artifactId, join(dir, s.artifactId.slice(2))])),
    onChain: jobCommitments(kind, params, inputs),
    domain,
    outputDir: dir,
  });
  const sizes: Record<string, number> = {};
  const opened: Record<string, Uint8Array> = {};
  for (const o of r.outputs) {
    expect(statSync(o.path).size).toBe(o.size);
    sizes[o.role] = o.size;
    opened[o.role] = (await openOutput(new Uint8Array(readFileSync(o.path)), kem.privateKey)).bytes;
  }
  return { inputSizes: sealed.map((s) => s.sealed.length), sizes, opened };
}

describe('attack (host): the sealed sizes of first-party job outputs', () => {
  it('a batch inference output’s size does not depend on the values of the inputs or outputs', async () => {
    const infer = async (x: number[], model = relu) => {
      // The requester writes its input at a fixed width too (spaces after each value: the same
      // sealed input size for every value), so only the output can tell.
      const text = `{"x":{"dims":[2,4],"type":"float32","data":[${x.map((v) => String(v).padEnd(24, ' ')).join(',')}]}}`;
      const r = await job('inference', {}, [
        ['model', model, 'application/onnx'],
        ['input', new TextEncoder().encode(text), 'application/json'],
      ]);
      const y = Object.values(parseTensorMap(r.opened.output!))[0]!;
      return { inputSizes: r.inputSizes, outputSize: r.sizes.output, y: Array.from(y.data as Float32Array) };
    };
    const positive = await infer([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    const negative = await infer([-0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8]);
    // The requester still gets its answer (the ReLU of its inputs).
    expect(negative.y).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(positive.y[0]).toBeCloseTo(0.1, 6);
    expect(negative.inputSizes).toEqual(positive.inputSizes);
    expect(negative.outputSize, 'the output size tells how many outputs are 0').toBe(positive.outputSize);
    // Nor the length of the model's output names (the requester's secret, 0853), under 4 KiB.
    const named = await infer([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], reluNamed('probability_of_default'));
    expect(named.y).toEqual(positive.y);
    expect(named.outputSize, 'the output size tells the output names’ length').toBe(positive.outputSize);
  }, 180_000);

  it('training outputs’ sizes do not tell the length of the requester’s class labels', async () => {
    // Two datasets of one byte length and the same numbers: in one the classes are "x" and "y",
    // in the other "xxxxxxx" and "yyyyyyy" (the numbers written shorter to make room).
    const csv = (long: boolean) => {
      const rows = ['f1,f2,label'];
      for (let k = 1; k <= 8; k++) {
        const label = k % 2 === 0 ? 'x' : 'y';
        rows.push(long ? `${k},${9 - k},${label.repeat(7)}` : `${k}.00,${9 - k}.00,${label}`);
      }
      return new TextEncoder().encode(`${rows.join('\n')}\n`);
    };
    const params = {
      task: 'classification',
      target: 'last',
      hidden: [4],
      epochs: 2,
      batchSize: 4,
      learningRate: 0.01,
      seed: 7,
      validationSplit: 0.25,
    };
    const short = await job('training', params, [['dataset', csv(false), 'text/csv']]);
    const long = await job('training', params, [['dataset', csv(true), 'text/csv']]);
    expect(long.inputSizes).toEqual(short.inputSizes);
    // The requester gets its labels back.
    expect(JSON.parse(new TextDecoder().decode(long.opened.preprocessing!)).labels).toEqual([
      'xxxxxxx',
      'yyyyyyy',
    ]);
    expect(long.sizes, 'output sizes tell the labels’ length').toEqual(short.sizes);
  }, 180_000);

  it('a padded model (0872) runs, so two models of other sizes reach the host as one size', async () => {
    // 0872 pads artifacts so their sealed size does not tell which of a few known models was
    // uploaded, but the enclave did not strip the padding from job inputs: a padded model could not
    // run at all, so a requester had no way to hide its model's size from the host.
    const mul = (k: number, extra: number) =>
      encodeOnnxModel(
        {
          name: 'g',
          nodes: [{ opType: 'Mul', inputs: ['x', 'k'], outputs: ['y'] }],
          initializers: [
            { name: 'k', dims: [1 + extra], dtype: 'float', data: new Float32Array(1 + extra).fill(k) },
          ],
          inputs: [{ name: 'x', elemType: 'float', shape: [1 + extra] }],
          outputs: [{ name: 'y', elemType: 'float', shape: [1 + extra] }],
        },
        {},
      );
    const run = async (model: Uint8Array, n: number) => {
      const input = new TextEncoder().encode(
        JSON.stringify({ x: { dims: [n], type: 'float32', data: Array.from({ length: n }, () => 2) } }),
      );
      const r = await job('inference', {}, [
        ['model', padPlaintext(model), paddedContentType('application/onnx')],
        ['input', padPlaintext(input), paddedContentType('application/json')],
      ]);
      return {
        inputSizes: r.inputSizes,
        y: Array.from(parseTensorMap(r.opened.output!).y!.data as Float32Array),
      };
    };
    const small = await run(mul(3, 0), 1);
    const larger = await run(mul(5, 40), 41);
    expect(small.y).toEqual([6]);
    expect(larger.y).toEqual(new Array(41).fill(10));
    expect(larger.inputSizes, 'the sealed model and input sizes tell the models apart').toEqual(
      small.inputSizes,
    );
  }, 180_000);
});
