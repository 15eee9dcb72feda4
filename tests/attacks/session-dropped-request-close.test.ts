import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildSessionOpen,
  SessionCodec,
  SessionStream,
  sealInput,
  sessionCommitments,
  sessionProofMismatches,
} from '@firn/client';
import { bytesToHex, type Hex, hexBytes, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import {
  type CloseSessionResult,
  createEnclaveProgram,
  createSimulatedProvider,
  type OpenSessionResult,
} from '@firn/enclave';
import { loadOnnxModel } from '@firn/ml';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { describe, expect, it } from 'vitest';
import { createSessionHandlers } from '../../packages/enclave/src/jobs/inferenceSession.ts';
import type { RuntimeModel } from '../../packages/enclave/src/runtime/mlRuntime.ts';
import { serveSessionEndpoint } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

// The attack: a host (or just a lost connection) drops one of the requester's session requests
// before it reaches the enclave: a direct TCP connection cut after the SDK wrote the request, or a
// relayed POST answered with an error without being forwarded. The SDK's `infer` then fails and,
// as it does on any failed request, closes the session with `codec.sealClose()`: the close tag
// sealed as its NEXT message, one sequence number past the dropped request. The enclave (or the
// session's child) opens the close only at the exact next sequence number it expects, i.e. the
// dropped request's, so the requester's genuine close is refused as E_UNAUTHENTICATED and the
// session keeps running: the requester gets no proof of the requests it WAS served and cannot end
// its own session (its slot stays held until the host's idle close). A dropped request must leave
// the session closable by its requester, with a proof of exactly the requests answered.
// (This drives the SDK's own codec calls in the order `openInferenceSession` makes them.)

const now = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-drop-close-'));
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([6]))),
    measurementRegisters: [sha256(new Uint8Array([6]))],
    platformId: hexBytes(platform.platformId, 'platformId'),
  },
  createSessionHandlers({
    now: () => now,
    maxRequestBytes: 64 * 1024,
    loadModel: async (b): Promise<RuntimeModel> => {
      const m = await loadOnnxModel(b);
      return {
        ...m,
        run: (i) => m.run(i),
        release: () => m.release(),
        serveSession: async (p) => {
          const served = await serveSessionEndpoint(m, { ...p, socketDir: dir });
          return { address: served.address, idleMs: async () => served.idleMs(), finish: served.finish };
        },
      };
    },
  }),
);
const identity = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
const requesterKey = bytesToHex(generateSigningKey().privateKey);
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const model = tinyLinearModel({ docString: 'drop-close' });
const sealedModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
writeFileSync(join(dir, sealedModel.artifactId.slice(2)), sealedModel.sealed);
let seed = 0;

async function open(direct: boolean) {
  const jobId = bytesToHex(sha256(new Uint8Array([++seed, 11])));
  const built = await buildSessionOpen({
    jobId,
    model: sealedModel,
    requesterKey,
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: now + 600,
    grantIssuedAt: now - 60,
  });
  const r = (await program.handle('openSession', {
    jobId,
    enc: built.body.enc,
    request: built.body.ciphertext,
    inputPaths: { [sealedModel.artifactId]: join(dir, sealedModel.artifactId.slice(2)) },
    onChain: sessionCommitments(sealedModel.artifactId),
    domain,
    ...(direct ? { direct: true, directHost: '127.0.0.1' } : {}),
  })) as OpenSessionResult;
  const codec = new SessionCodec(built.secret, hexBytes(r.salt, 'salt', 32), jobId);
  return { jobId, r, codec };
}

const x = (v: number[]) => ({
  x: { type: 'float32' as const, dims: [v.length / 3, 3], data: Float32Array.from(v) },
});

const close = (jobId: Hex, codec: SessionCodec) =>
  program.handle('closeSession', {
    sessionId: jobId,
    auth: Buffer.from(codec.sealClose()).toString('base64'),
  }) as Promise<CloseSessionResult>;

describe('a request dropped before the enclave leaves the session closable by its requester', () => {
  it('direct connection: the request after two answers is lost; the requester’s close is taken and its proof matches', async () => {
    const { jobId, r, codec } = await open(true);
    const d = r.endpoint!.direct!;
    const s = await SessionStream.connectDirect('127.0.0.1', d.port, hexBytes(d.token, 'token', 32));
    for (const v of [
      [1, 2, 3],
      [4, 5, 6],
    ]) {
      const m = codec.sealRequest(x(v));
      codec.openResponse(m, await s.send(m));
    }
    // The third request is sealed (the SDK's infer) and written, but the connection is cut before
    // the child reads it: it never arrives.
    codec.sealRequest(x([7, 8, 9]));
    s.close();
    // The SDK's failed infer closes the session with its next message.
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(2);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });

  it('relayed (pipe) session: a POST the host never forwarded; the requester’s close is taken and its proof matches', async () => {
    const { jobId, codec } = await open(false);
    const m = codec.sealRequest(x([1, 2, 3]));
    const a = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(m).toString('base64'),
    })) as { message: string };
    codec.openResponse(m, new Uint8Array(Buffer.from(a.message, 'base64')));
    // Dropped by the host (a 503 to the requester, never forwarded).
    codec.sealRequest(x([4, 5, 6]));
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(1);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });
});
