import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { buildSessionOpen, openSessionInfo, SessionCodec, sealInput, sessionCommitments } from '@firn/client';
import { bytesToHex, type Hex, hexBytes, parseWorkProofJson, sha256, workProofDigest } from '@firn/core';
import { type CreateGrantParams, generateKemKeyPair, generateSigningKey, recoverAddress } from '@firn/crypto';
import { loadOnnxModel } from '@firn/ml';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { createSimulatedProvider } from '../evidence/simulated.ts';
import {
  type CloseSessionResult,
  createSessionHandlers,
  type OpenSessionResult,
} from './inferenceSession.ts';
import { tinyLinearModel, tinyLinearReference } from '../../test/testModels.ts';

// In-process enclave program with the session handlers; the host is played by hand (model file
// in a temp dir, on-chain values computed as the requester would). No chain, no HTTP: the
// node/e2e test covers those.
let now = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-session-'));
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
let loads = 0;
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([2]))),
    measurementRegisters: [sha256(new Uint8Array([2]))],
    platformId: hexBytes(platform.platformId, 'platformId'),
  },
  createSessionHandlers({
    now: () => now,
    maxSessions: 2,
    idleSeconds: 300,
    maxRequestBytes: 64 * 1024,
    loadModel: (b) => {
      loads++;
      return loadOnnxModel(b);
    },
  }),
);
const identity = (await program.handle('init', {})) as {
  enclaveId: Hex;
  kemPublicKey: Hex;
  enclaveAddress: Hex;
};
const requesterKey = bytesToHex(generateSigningKey().privateKey);
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const model = tinyLinearModel({ docString: 'session' });
const sealedModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
writeFileSync(join(dir, sealedModel.artifactId.slice(2)), sealedModel.sealed);
let seed = 0;

type OpenOpts = {
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
  format?: 'binary' | 'json';
  /** Run the host's pre-flight first, as the node does before it claims. */
  preflight?: boolean;
};

async function open(opts: OpenOpts = {}) {
  const { jobId, built, params } = await build(opts);
  if (opts.preflight) await program.handle('preflightSession', params);
  const r = (await program.handle('openSession', params)) as OpenSessionResult;
  const codec = new SessionCodec(built.secret, hexBytes(r.salt, 'salt', 32), jobId, opts.format ?? 'binary');
  return { jobId, r, codec, params, built };
}

/** A sealed open request for a fresh job, as the host receives it (not yet opened). */
async function build(opts: OpenOpts = {}) {
  const jobId = bytesToHex(sha256(new Uint8Array([++seed, 42])));
  const built = await buildSessionOpen({
    jobId,
    model: sealedModel,
    requesterKey,
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: now + 600,
    grantIssuedAt: now - 60,
    ...(opts.mutateGrant ? { mutateGrant: opts.mutateGrant } : {}),
  });
  const params = {
    jobId,
    enc: built.body.enc,
    request: built.body.ciphertext,
    inputPaths: { [sealedModel.artifactId]: join(dir, sealedModel.artifactId.slice(2)) },
    onChain: sessionCommitments(sealedModel.artifactId),
    domain,
  };
  return { jobId, built, params };
}

const b64 = (m: Uint8Array) => Buffer.from(m).toString('base64');
const send = async (sessionId: Hex, message: Uint8Array) =>
  new Uint8Array(
    Buffer.from(
      ((await program.handle('sessionRequest', { sessionId, message: b64(message) })) as { message: string })
        .message,
      'base64',
    ),
  );
const xTensor = (x: number[]) => ({
  x: { type: 'float32' as const, dims: [x.length / 3, 3], data: Float32Array.from(x) },
});

describe('enclave inference sessions', () => {
  it('runs requests on a model loaded once and closes with a proof over the transcript', async () => {
    const before = loads;
    const { jobId, codec, r, built } = await open();
    // The tensor names reach the requester only sealed: the host-visible answer has none.
    expect(JSON.stringify(r)).not.toMatch(/inputNames|"x"/);
    expect(await openSessionInfo(built.channel, r.response, jobId)).toEqual({
      inputNames: ['x'],
      outputNames: ['y'],
    });
    let units = 0;
    for (const x of [
      [0.5, -1, 2],
      [3, 0.25, -0.75, 1, 2, 3],
      [9, 8, 7],
    ]) {
      const req = codec.sealRequest(xTensor(x));
      const out = codec.openResponse(req, await send(jobId, req));
      const ref = tinyLinearReference(model, x, x.length / 3);
      expect(out.y!.dims).toEqual([x.length / 3, 2]);
      Array.from(out.y!.data as Float32Array).forEach((v, k) => {
        expect(Math.abs(v - ref[k]!)).toBeLessThan(1e-5);
      });
      units += x.length;
    }
    expect(loads - before).toBe(1);
    now += 5;
    const c = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(c.requests).toBe(3);
    const p = parseWorkProofJson(c.proof);
    expect(p.proof.jobId).toBe(jobId);
    expect(p.proof.outputCommitment).toBe(codec.commitment());
    expect(p.proof.inputCommitment).toBe(sessionCommitments(sealedModel.artifactId).inputCommitment);
    expect(p.proof.workUnits).toBe(BigInt(units));
    expect(p.proof.finishedAt - p.proof.startedAt).toBe(5n);
    const signer = recoverAddress(
      hexBytes(workProofDigest(domain, p.proof), 'digest', 32),
      hexBytes(p.signature, 'signature', 65),
    );
    expect(signer).toBe(identity.enclaveAddress.toLowerCase());
    await expect(
      program.handle('sessionRequest', { sessionId: jobId, message: 'AAAA' }),
    ).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
  });

  it('refuses replayed and reordered requests without losing its place; an altered one ends the session (decision 1715)', async () => {
    const { jobId, codec } = await open();
    const first = codec.sealRequest(xTensor([1, 2, 3]));
    codec.openResponse(first, await send(jobId, first));
    await expect(send(jobId, first)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
    const second = codec.sealRequest(xTensor([4, 5, 6]));
    const third = codec.sealRequest(xTensor([7, 8, 9]));
    await expect(send(jobId, third)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' });
    // The untouched messages still go through, in order.
    const out2 = codec.openResponse(second, await send(jobId, second));
    expect(Array.from(out2.y!.data as Float32Array)[0]).toBeCloseTo(
      tinyLinearReference(model, [4, 5, 6], 1)[0]!,
      5,
    );
    codec.openResponse(third, await send(jobId, third));
    // Altered: refused, and nothing more opens (the genuine message included): one try.
    const fourth = codec.sealRequest(xTensor([1, 1, 1]));
    const altered = Uint8Array.from(fourth);
    altered[altered.length - 5]! ^= 1;
    await expect(send(jobId, altered)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    await expect(send(jobId, fourth)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    // What was answered is still proven; the transcript matches the proof.
    const c = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(parseWorkProofJson(c.proof).proof.outputCommitment).toBe(codec.commitment());
    expect(c.requests).toBe(3);
  });

  it('refuses a grant for another enclave, an expired grant and a second open of the same job', async () => {
    await expect(
      open({ mutateGrant: (g) => ({ ...g, enclaveId: bytesToHex(new Uint8Array(32).fill(7)) }) }),
    ).rejects.toMatchObject({ code: 'E_GRANT_SCOPE' });
    await expect(open({ mutateGrant: (g) => ({ ...g, expiresAt: now - 1 }) })).rejects.toMatchObject({
      code: 'E_GRANT_EXPIRED',
    });
    const s = await open();
    await expect(program.handle('openSession', s.params)).rejects.toMatchObject({ code: 'E_CONFLICT' });
    // Nothing was served: the close frees the session but signs no Work Proof.
    await expect(program.handle('closeSession', { sessionId: s.jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
    await expect(program.handle('closeSession', { sessionId: s.jobId })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
  });

  it('reports typed request errors inside the channel, caps request size and refuses after the grant expires', async () => {
    const { jobId, codec } = await open({ format: 'json' });
    const bad = codec.sealRequest({ x: { type: 'float32', dims: [1, 4], data: new Float32Array(4) } });
    const badOut = await send(jobId, bad);
    expect(() => codec.openResponse(bad, badOut)).toThrow(
      expect.objectContaining({ code: 'E_INPUT_INVALID' }),
    );
    const good = codec.sealRequest(xTensor([1, 1, 1]));
    const out = codec.openResponse(good, await send(jobId, good));
    expect(out.y!.dims).toEqual([1, 2]);
    await expect(
      program.handle('sessionRequest', { sessionId: jobId, message: 'A'.repeat(100_000) }),
    ).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    now += 600;
    const late = codec.sealRequest(xTensor([1, 1, 1]));
    await expect(send(jobId, late)).rejects.toMatchObject({ code: 'E_GRANT_EXPIRED' });
    const c = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    const p = parseWorkProofJson(c.proof).proof;
    // The request the model refused (it opened and decoded: 4 elements) counts like an answered
    // one, so the proof's workUnits do not tell which requests failed (decision 1774); the
    // request refused before it opened (too large) and the one refused after expiry do not count.
    expect(p.workUnits).toBe(7n);
    expect(p.outputCommitment).toBe(codec.commitment());
  });

  it('caps the number of open sessions and drops idle ones to make room', async () => {
    const a = await open();
    const b = await open();
    await expect(open()).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    await expect(program.handle('closeSession', { sessionId: a.jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
    const c = await open();
    now += 301;
    const d = await open(); // b and c were idle past the limit and are dropped
    await expect(program.handle('closeSession', { sessionId: b.jobId })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    await expect(program.handle('closeSession', { sessionId: c.jobId })).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });
    await expect(program.handle('closeSession', { sessionId: d.jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
  });

  it('pre-flight, before any claim: reserves a slot, refuses when full or on junk, and the open takes over the checked channel', async () => {
    // Taken over: without it the open would be refused as a replay of the pre-flighted channel.
    const a = await open({ preflight: true });
    const req = a.codec.sealRequest(xTensor([1, 2, 3]));
    expect(a.codec.openResponse(req, await send(a.jobId, req)).y!.dims).toEqual([1, 2]);
    const b = await build();
    await program.handle('preflightSession', b.params); // the second (last) slot, reserved
    const c = await build();
    await expect(program.handle('preflightSession', c.params)).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
    await expect(program.handle('openSession', c.params)).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    await expect(program.handle('preflightSession', b.params)).rejects.toMatchObject({ code: 'E_CONFLICT' });
    // The host's claim failed: it gives the slot back, and the next request can have it.
    await program.handle('releaseSessionPreflight', { jobId: b.jobId });
    await program.handle('preflightSession', c.params);
    await program.handle('releaseSessionPreflight', { jobId: c.jobId });
    // Junk that does not open, or a request for other chain facts, is refused and holds no slot.
    const d = await build();
    await expect(
      program.handle('preflightSession', { ...d.params, request: Buffer.alloc(96, 7).toString('base64') }),
    ).rejects.toMatchObject({ code: 'E_DECRYPT' });
    await expect(
      program.handle('preflightSession', {
        ...d.params,
        onChain: { ...d.params.onChain, workloadHash: bytesToHex(new Uint8Array(32)) },
      }),
    ).rejects.toMatchObject({ code: 'E_JOB_INVALID' });
    const e = await build({ mutateGrant: (g) => ({ ...g, expiresAt: now - 1 }) });
    await expect(program.handle('preflightSession', e.params)).rejects.toMatchObject({
      code: 'E_GRANT_EXPIRED',
    });
    const f = await open({ preflight: true });
    await program.handle('closeSession', { sessionId: a.jobId });
    // f answered no request: closing ends it without a Work Proof (nothing to pay for).
    await expect(program.handle('closeSession', { sessionId: f.jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
  });
});
