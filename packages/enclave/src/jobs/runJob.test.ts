import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import {
  buildJobRequest,
  jobCommitments,
  openOutput,
  paddedContentType,
  padPlaintext,
  sealInput,
} from '@firn/client';
import {
  bytesToHex,
  computeOutputCommitment,
  type Hex,
  parseWorkProofJson,
  sha256,
  workProofDigest,
} from '@firn/core';
import {
  CHANNEL_MIN_PADDED_BYTES,
  generateKemKeyPair,
  generateSigningKey,
  readArtifactHeader,
  recoverAddress,
} from '@firn/crypto';
import { encodeOnnxModel } from '@firn/ml/formats';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { createSimulatedProvider } from '../evidence/simulated.ts';
import {
  failureEventPlaintext,
  unpadInput,
  createPreflightJobHandler,
  createRunJobHandler,
  type PreflightedJob,
  PreflightStore,
  type RunJobResult,
} from './runJob.ts';
import { tinyLinearModel, tinyLinearReference } from '../../test/testModels.ts';
import { FIRST_PARTY_SERVED, WORKLOADS } from './workloads/index.ts';

// In-process: the enclave program with the job handler, no host and no chain. The host side is
// played by hand (files in a temp dir); the on-chain values are computed as a requester would.
const NOW = 1_750_000_000;
/** The enclave's clock (host time); a test moves it and puts it back. */
let clock = NOW;
const dir = mkdtempSync(join(tmpdir(), 'firn-runjob-'));
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const events: unknown[] = [];
const preflight = new PreflightStore<PreflightedJob>();
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([1]))),
    measurementRegisters: [sha256(new Uint8Array([1]))],
    platformId: Uint8Array.from(Buffer.from(platform.platformId.slice(2), 'hex')),
    emit: (event, data) => events.push({ event, data }),
  },
  {
    runJob: createRunJobHandler({
      workloads: WORKLOADS,
      served: FIRST_PARTY_SERVED,
      now: () => clock,
      preflight,
    }),
    preflightJob: createPreflightJobHandler({
      workloads: WORKLOADS,
      served: FIRST_PARTY_SERVED,
      now: () => clock,
      preflight,
    }),
  },
);
const identity = (await program.handle('init', {})) as {
  enclaveId: Hex;
  kemPublicKey: Hex;
  enclaveAddress: Hex;
};
const requester = generateSigningKey();
const requesterKey = bytesToHex(requester.privateKey);
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const model = tinyLinearModel({ docString: 'tiny' });
const x = [0.5, -1, 2, 3, 0.25, -0.75];
const inputJson = JSON.stringify({ x: { dims: [2, 3], type: 'float32', data: x } });

async function prepare(
  opts: { modelBytes?: Uint8Array; input?: string; flip?: boolean; jobId?: Hex; expiresAt?: number } = {},
) {
  const m = await sealInput(opts.modelBytes ?? model.bytes, 'application/onnx', kem.publicKey);
  const i = await sealInput(
    new TextEncoder().encode(opts.input ?? inputJson),
    'application/json',
    kem.publicKey,
  );
  if (opts.flip) m.sealed[m.sealed.length - 20]! ^= 1;
  const ids = [m, i].map((s) => {
    const id = opts.flip && s === m ? bytesToHex(sha256(s.sealed)) : s.artifactId;
    writeFileSync(join(dir, id.slice(2)), s.sealed);
    return id;
  });
  const inputs = [
    { role: 'model', artifactId: ids[0]!, dataKey: m.dataKey },
    { role: 'input', artifactId: ids[1]!, dataKey: i.dataKey },
  ];
  const jobId = opts.jobId ?? bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const built = await buildJobRequest({
    jobId,
    kind: 'inference',
    inputs,
    params: {},
    requesterKey,
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: opts.expiresAt ?? NOW + 600,
    grantIssuedAt: NOW - 60,
  });
  const onChain = jobCommitments('inference', {}, inputs);
  const params = {
    jobId,
    enc: built.body.enc,
    request: built.body.ciphertext,
    inputPaths: Object.fromEntries(ids.map((id) => [id, join(dir, id.slice(2))])),
    onChain,
    domain,
    outputDir: dir,
  };
  return { params, built, onChain };
}

describe('enclave runJob (inference, in process)', () => {
  it('runs a sealed model on sealed inputs and signs a proof that recovers the enclave address', async () => {
    const { params, built, onChain } = await prepare();
    const r = (await program.handle('runJob', params)) as RunJobResult;
    expect(r.outputs).toHaveLength(1);
    const sealed = new Uint8Array(readFileSync(r.outputs[0]!.path));
    const out = await openOutput(sealed, kem.privateKey);
    const y = JSON.parse(new TextDecoder().decode(out.bytes)).y;
    const ref = tinyLinearReference(model, x, 2);
    expect(y.dims).toEqual([2, 2]);
    y.data.forEach((v: number, k: number) => {
      expect(Math.abs(v - ref[k]!)).toBeLessThan(1e-5);
    });
    const p = parseWorkProofJson(r.proof);
    expect(p.proof.workloadHash).toBe(onChain.workloadHash);
    expect(p.proof.outputCommitment).toBe(computeOutputCommitment(r.outputs));
    expect(p.proof.workUnits).toBe(6n);
    const signer = recoverAddress(
      Buffer.from(workProofDigest(domain, p.proof).slice(2), 'hex'),
      Buffer.from(p.signature.slice(2), 'hex'),
    );
    expect(signer).toBe(identity.enclaveAddress.toLowerCase());
    const summary = JSON.parse(new TextDecoder().decode(await built.channel.openResponse(r.response)));
    expect(summary.outputs[0].artifactId).toBe(r.outputs[0]!.artifactId);
    // Each output's sealed size, which the requester caps its download at (decision 1600).
    expect(summary.outputs.map((o: { size: number }) => o.size)).toEqual(
      r.outputs.map((o) => readFileSync(o.path).length),
    );
    const ev = events.filter((e) => (e as { data: { jobId: Hex } }).data.jobId === params.jobId);
    const first = JSON.parse(
      new TextDecoder().decode(
        await built.channel.openEvent((ev[0] as { data: { message: string } }).data.message),
      ),
    );
    expect(first.stage).toBe('started');
  });

  it('later jobs of a kind (output keys drawn while the workload ran) seal outputs that open for their requester only, each under its own data key', async () => {
    const other = await generateKemKeyPair();
    const commitments = new Set<string>();
    for (let n = 0; n < 3; n++) {
      const { params } = await prepare();
      const r = (await program.handle('runJob', params)) as RunJobResult;
      const sealed = new Uint8Array(readFileSync(r.outputs[0]!.path));
      expect(
        JSON.parse(new TextDecoder().decode((await openOutput(sealed, kem.privateKey)).bytes)).y.dims,
      ).toEqual([2, 2]);
      await expect(openOutput(sealed, other.privateKey)).rejects.toThrow();
      commitments.add(bytesToHex(readArtifactHeader(sealed).keyCommitment));
      expect(bytesToHex(sha256(sealed))).toBe(r.outputs[0]!.artifactId);
    }
    expect(commitments.size).toBe(3);
  });

  it('refuses a replayed request, so no response or event key ever seals twice under one nonce', async () => {
    const { params } = await prepare();
    await program.handle('runJob', params);
    await expect(program.handle('runJob', params)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
  });

  it('tells the host only the code of a failure; the message goes sealed to the requester', async () => {
    const canary = 'c4n4ry_tensor_name';
    const { params, built } = await prepare({
      input: JSON.stringify({ [canary]: { dims: [2, 3], type: 'float32', data: x } }),
    });
    const err = (await program.handle('runJob', params).catch((e: unknown) => e)) as {
      code: string;
      message: string;
    };
    expect(err.code).toBe('E_INPUT_INVALID');
    expect(err.message).not.toContain(canary);
    const ofJob = events.filter((e) => (e as { data: { jobId: Hex } }).data.jobId === params.jobId);
    // An input the first-party model rejects is the requester's own: the enclave signs the failure
    // (decision 1595), which carries ids and a reason code only, never the message.
    const signed = ofJob.filter((e) => (e as { event: string }).event === 'jobFailure');
    expect(signed).toHaveLength(1);
    expect(JSON.stringify(signed[0])).not.toContain(canary);
    const mine = ofJob.filter((e) => (e as { event: string }).event === 'jobEvent');
    let opened: { stage?: string; error?: { code: string; message: string } } = {};
    for (const e of mine) {
      const message = (e as { data: { message: string } }).data.message;
      expect(Buffer.from(message, 'base64').toString('latin1')).not.toContain(canary);
      opened = JSON.parse(new TextDecoder().decode(await built.channel.openEvent(message)));
    }
    expect(opened).toMatchObject({ stage: 'failed', error: { code: 'E_INPUT_INVALID' } });
    expect(opened.error!.message).toContain(canary);
  });

  it('refuses a job whose on-chain commitments differ from the request', async () => {
    const { params } = await prepare();
    const bad = { ...params, onChain: { ...params.onChain, workloadHash: bytesToHex(new Uint8Array(32)) } };
    await expect(program.handle('runJob', bad)).rejects.toMatchObject({ code: 'E_JOB_INVALID' });
  });

  it('refuses when the host passes another jobId than the request carries', async () => {
    const { params } = await prepare();
    await expect(
      program.handle('runJob', { ...params, jobId: bytesToHex(new Uint8Array(32).fill(9)) }),
    ).rejects.toMatchObject({
      code: 'E_DECRYPT',
    });
  });

  it('fails typed on an expired grant, a tampered artifact, an invalid model and a wrong input shape', async () => {
    await expect(
      program.handle('runJob', (await prepare({ expiresAt: NOW - 1 })).params),
    ).rejects.toMatchObject({
      code: 'E_GRANT_EXPIRED',
    });
    await expect(program.handle('runJob', (await prepare({ flip: true })).params)).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
    await expect(
      program.handle(
        'runJob',
        (await prepare({ modelBytes: new TextEncoder().encode('not an onnx model') })).params,
      ),
    ).rejects.toMatchObject({ code: 'E_MODEL_INVALID' });
    // Weights in a side file (ONNX external data) would be read from the host's disk: refused.
    const external = encodeOnnxModel({
      name: 'ext',
      nodes: [{ opType: 'MatMul', inputs: ['x', 'W'], outputs: ['y'] }],
      initializers: [
        {
          name: 'W',
          dims: [3, 2],
          dtype: 'float',
          data: new Float32Array(6),
          externalData: { location: 'W.bin' },
        },
      ],
      inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N', 2] }],
    });
    await expect(
      program.handle('runJob', (await prepare({ modelBytes: external })).params),
    ).rejects.toMatchObject({
      code: 'E_MODEL_INVALID',
    });
    const wrong = JSON.stringify({ x: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } });
    await expect(program.handle('runJob', (await prepare({ input: wrong })).params)).rejects.toMatchObject({
      code: 'E_INPUT_INVALID',
    });
  });

  it('an input the host does not have (missing file, a directory in its place) fails E_NOT_FOUND', async () => {
    for (const bad of [join(dir, 'missing-input'), dir]) {
      const { params } = await prepare();
      const [id] = Object.entries(params.inputPaths)[1]!;
      params.inputPaths[id] = bad;
      await expect(program.handle('runJob', params)).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    }
  });

  it('refuses host storage that returns other bytes than the committed id', async () => {
    const { params } = await prepare();
    const [id, path] = Object.entries(params.inputPaths)[1]!;
    const b = readFileSync(path);
    b[b.length - 1]! ^= 1;
    writeFileSync(path, b);
    await expect(program.handle('runJob', params)).rejects.toMatchObject({ code: 'E_ARTIFACT_TAMPERED' });
    expect(id).toMatch(/^0x/);
  });

  it('a grant that expires between pre-flight and runJob fails the run (the pre-flight skips only the signature re-check)', async () => {
    const { params } = await prepare({ expiresAt: NOW + 30 });
    const { outputDir: _, ...pre } = params;
    await expect(program.handle('preflightJob', pre)).resolves.toEqual({ ok: true });
    clock = NOW + 31;
    try {
      await expect(program.handle('runJob', params)).rejects.toMatchObject({ code: 'E_GRANT_EXPIRED' });
    } finally {
      clock = NOW;
    }
  });

  it('pre-flight (before the host claims): refuses junk, other chain facts and bad grants without reading an input; runJob takes over the checked channel', async () => {
    const { params, built } = await prepare();
    const { outputDir: _o, ...pre } = params;
    // A request that never decrypts: refused, and the real request's channel is not burned by it.
    await expect(
      program.handle('preflightJob', { ...pre, request: Buffer.alloc(96, 7).toString('base64') }),
    ).rejects.toMatchObject({ code: 'E_DECRYPT' });
    // The pre-flight reads no input: it passes with the host files gone (they come back for the run).
    const saved = Object.values(params.inputPaths).map((p) => [p, readFileSync(p)] as const);
    for (const [p] of saved) rmSync(p);
    await expect(program.handle('preflightJob', pre)).resolves.toEqual({ ok: true });
    for (const [p, b] of saved) writeFileSync(p, b);
    // runJob reuses the opened channel (opening it again would be refused as a replay).
    const r = (await program.handle('runJob', params)) as RunJobResult;
    const summary = JSON.parse(new TextDecoder().decode(await built.channel.openResponse(r.response)));
    expect(summary.jobId).toBe(params.jobId);
    // Taken once: a second run of the same request is a replay.
    await expect(program.handle('runJob', params)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });

    const other = await prepare();
    const { outputDir: _p, ...otherPre } = other.params;
    await expect(
      program.handle('preflightJob', {
        ...otherPre,
        onChain: { ...otherPre.onChain, inputCommitment: bytesToHex(new Uint8Array(32)) },
      }),
    ).rejects.toMatchObject({ code: 'E_JOB_INVALID' });
    const expired = await prepare({ expiresAt: NOW - 1 });
    const { outputDir: _q, ...expiredPre } = expired.params;
    await expect(program.handle('preflightJob', expiredPre)).rejects.toMatchObject({
      code: 'E_GRANT_EXPIRED',
    });
    expect(preflight.size).toBe(0);
  });
});

// docs/decisions/1850-job-channel-messages-padded.md: a failure event fits the channel's padding
// floor, so every failure has one sealed length whatever its message quotes.
describe('failureEventPlaintext', () => {
  it('keeps short messages whole and cuts long ones (by code points, valid JSON) to fit the floor', () => {
    const short = failureEventPlaintext({ code: 'E_NOT_FOUND', message: 'no record for "al"' });
    expect(JSON.parse(new TextDecoder().decode(short))).toEqual({
      stage: 'failed',
      error: { code: 'E_NOT_FOUND', message: 'no record for "al"' },
    });
    for (const message of ['x'.repeat(5000), '€'.repeat(1024), '"\\'.repeat(900), '\u0001'.repeat(1024)]) {
      const pt = failureEventPlaintext({ code: 'E_INVALID_INPUT', message });
      expect(pt.length).toBeLessThanOrEqual(CHANNEL_MIN_PADDED_BYTES - 1);
      const o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(pt));
      expect(o.error.code).toBe('E_INVALID_INPUT');
      expect(o.error.message.endsWith('...')).toBe(true);
      expect(message.startsWith(o.error.message.slice(0, -3))).toBe(true);
    }
  });
});

// docs/decisions/1852-padded-job-inputs.md: a job input sealed with 0872's padding reaches the
// workload without it.
describe('unpadInput', () => {
  it('strips the padding and the parameter, passes an unpadded input as it is, refuses a bad marker', () => {
    const body = new TextEncoder().encode('{"x":1}');
    const padded = padPlaintext(body);
    expect(padded.length).toBe(4096);
    const r = unpadInput(paddedContentType('application/json'), padded);
    expect(r.contentType).toBe('application/json');
    expect(Buffer.from(r.bytes).equals(Buffer.from(body))).toBe(true);
    expect(unpadInput('application/json', body)).toEqual({ contentType: 'application/json', bytes: body });
    expect(() => unpadInput('application/json; firn-pad=padme', new Uint8Array(16))).toThrow(
      expect.objectContaining({ code: 'E_INPUT_INVALID' }),
    );
  });
});
