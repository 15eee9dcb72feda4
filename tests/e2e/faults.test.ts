import { randomBytes } from 'node:crypto';
import { NodeApi, type RunJobOptions, runJob, type SealedInput, sealInput } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { artifactId, generateKemKeyPair } from '@firn/crypto';
import { encodeOnnxModel } from '@firn/ml/formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectJobFailure } from '../helpers/expectJobFailure.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { requesterOptions, startTestNetwork, type TestNetwork } from './network.ts';

// What bad input gets: each fault fails the job with a typed error the requester sees, the node
// fails it on chain, the SDK reclaims the escrow, and the uploaded artifacts stay intact and
// usable for a retry. Not covered: a node that never answers (claim timeout path).
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
let goodModel: SealedInput;
let goodInput: SealedInput;
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 9 });
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const input = { x: { dims: [2, 3], type: 'float32', data: [1, 2, 3, 4, 5, 6] } };

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
  goodModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
  goodInput = await sealInput(enc(input), 'application/json', kem.publicKey);
}, 120_000);
afterAll(() => net?.stop());

function base(inputs: RunJobOptions['inputs'], extra: Partial<RunJobOptions> = {}): RunJobOptions {
  return {
    ...requesterOptions(net, kem),
    kind: 'inference',
    inputs,
    params: {},
    escrow: 10n ** 15n,
    ...extra,
  };
}

const expectFailure = (opts: RunJobOptions, code: string) => expectJobFailure(net, opts, code);

/** The inputs of an inference job: a model and an input (by default the good ones). */
const modelAndInput = (model = goodModel, input = goodInput): RunJobOptions['inputs'] => [
  { role: 'model', sealed: model },
  { role: 'input', sealed: input },
];
const good = (): RunJobOptions['inputs'] => modelAndInput();
const random32 = () => bytesToHex(randomBytes(32));

describe('jobs that must fail cleanly', () => {
  it('a flipped byte in an uploaded artifact', async () => {
    const bad = { ...goodModel, sealed: Uint8Array.from(goodModel.sealed) };
    bad.sealed[bad.sealed.length - 30]! ^= 0x01;
    bad.artifactId = artifactId(bad.sealed);
    await expectFailure(base(modelAndInput(bad)), 'E_ARTIFACT_TAMPERED');
  });

  it('a grant for another job', async () => {
    await expectFailure(
      base(good(), { mutateGrant: (p) => ({ ...p, scope: { ...p.scope, jobId: random32() } }) }),
      'E_GRANT_SCOPE',
    );
  });

  it('a grant for another enclave', async () => {
    await expectFailure(
      base(good(), { mutateGrant: (p) => ({ ...p, enclaveId: random32() }) }),
      'E_GRANT_SCOPE',
    );
  });

  it('an expired grant', async () => {
    const past = Math.floor(Date.now() / 1000) - 60;
    await expectFailure(base(good(), { mutateGrant: (p) => ({ ...p, expiresAt: past }) }), 'E_GRANT_EXPIRED');
  });

  it('a model with external data (weights in a host file): E_MODEL_INVALID before onnxruntime, escrow back', async () => {
    const external = encodeOnnxModel({
      name: 'ext',
      nodes: [{ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
      initializers: [
        {
          name: 'W',
          dims: [3, 2],
          dtype: 'float',
          data: new Float32Array(6),
          externalData: { location: 'weights.bin' },
        },
      ],
      inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N', 2] }],
    });
    const sealed = await sealInput(external, 'application/onnx', kem.publicKey);
    await expectFailure(base(modelAndInput(sealed)), 'E_MODEL_INVALID');
  });

  it('a model onnxruntime rejects', async () => {
    const junk = await sealInput(enc({ not: 'a model' }), 'application/onnx', kem.publicKey);
    await expectFailure(base(modelAndInput(junk)), 'E_MODEL_INVALID');
  });

  it('input tensors of the wrong shape, and of the wrong type', async () => {
    const shape = await sealInput(
      enc({ x: { dims: [2, 2], type: 'float32', data: [1, 2, 3, 4] } }),
      'application/json',
      kem.publicKey,
    );
    await expectFailure(base(modelAndInput(goodModel, shape)), 'E_INPUT_INVALID');
    const type = await sealInput(
      enc({ x: { dims: [1, 3], type: 'int32', data: [1, 2, 3] } }),
      'application/json',
      kem.publicKey,
    );
    await expectFailure(base(modelAndInput(goodModel, type)), 'E_INPUT_INVALID');
  });

  it('leaves the uploaded artifacts intact, and a retry with the same artifacts succeeds', async () => {
    const api = new NodeApi(net.node.url);
    expect(
      Buffer.from(await api.getArtifact(goodModel.artifactId)).equals(Buffer.from(goodModel.sealed)),
    ).toBe(true);
    expect(
      Buffer.from(await api.getArtifact(goodInput.artifactId)).equals(Buffer.from(goodInput.sealed)),
    ).toBe(true);
    const r = await runJob(base(good()));
    expect(r.proofCheck.ok).toBe(true);
    const y = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes)).y;
    expect(y.dims).toEqual([2, 2]);
  });

  it('refuses malformed or oversized requests at the node API', async () => {
    const signer = new NodeApi(net.node.url, 10_000, {
      requesterKey: net.requester.privateKey,
      scope: {
        chainId: net.deployment.chainId,
        jobMarket: net.deployment.jobMarket,
        enclaveId: net.node.identity!.enclaveId,
      },
    });
    const post = (body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] } | { jobId: string }) =>
      fetch(new URL('/v1/jobs', net.node.url), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...('enc' in body ? signer.submissionHeaders('POST /v1/jobs', body) : {}),
        },
        body: JSON.stringify(body),
      });
    expect((await post({ jobId: 'nope' })).status).toBe(400);
    const big = await fetch(new URL('/v1/jobs', net.node.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(3 * 1024 * 1024),
    });
    expect(big.status).toBe(413);
    // A job the chain does not know, signed by a funded requester: 404 before anything is recorded.
    const unknownJob = await post({
      jobId: random32(),
      enc: random32(),
      ciphertext: 'AAAA',
      inputs: [goodModel.artifactId],
    });
    expect(unknownJob.status).toBe(404);
    const unsigned = await fetch(new URL('/v1/jobs', net.node.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobId: random32(), enc: random32(), ciphertext: 'AAAA', inputs: [random32()] }),
    });
    expect(unsigned.status).toBe(401);
    expect((await fetch(new URL(`/v1/artifacts/${random32()}`, net.node.url))).status).toBe(404);
    expect((await fetch(new URL('/v1/artifacts/..%2f..%2fetc', net.node.url))).status).toBe(400);
  });
});
