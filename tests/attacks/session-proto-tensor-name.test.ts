import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildSessionOpen,
  SessionCodec,
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

// The attack: a requester (careless, or one feeding a tensor map parsed from its own user's JSON)
// sends a session request whose tensor map has an own property named "__proto__" besides the
// model's input. The SDK counts every own tensor's elements into the workUnits it expects; the
// enclave side decodes the binary tensor form into a plain object, where `out["__proto__"] = t`
// sets the map's prototype instead of adding a tensor: the tensor vanishes from the map, the input
// check does not see an unknown input, the model runs, and the child counts fewer units than the
// requester. The requester then refuses an honestly signed proof of exactly what was served (a
// proof whose workUnits differ from its own count), and the extra tensor was silently ignored
// instead of refused. Both ends must agree on the request: decoded maps must not have a prototype.

const now = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-proto-tensor-'));
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([7]))),
    measurementRegisters: [sha256(new Uint8Array([7]))],
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
const model = tinyLinearModel({ docString: 'proto-tensor' });
const sealedModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
writeFileSync(join(dir, sealedModel.artifactId.slice(2)), sealedModel.sealed);
let seed = 0;

async function open(direct: boolean) {
  const jobId = bytesToHex(sha256(new Uint8Array([++seed, 12])));
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

describe('a tensor named "__proto__" in a session request', () => {
  it('is either refused or counted alike by both ends: the honest proof passes the requester’s check', async () => {
    const { jobId, codec } = await open(false);
    const tensors = JSON.parse(
      '{"x": null, "__proto__": {"type": "float32", "dims": [1, 3], "data": null}}',
    ) as Record<string, { type: 'float32'; dims: number[]; data: Float32Array }>;
    tensors.x = x([1, 2, 3]).x;
    tensors.__proto__!.data = Float32Array.from([9, 9, 9]);
    expect(Object.keys(tensors)).toEqual(['x', '__proto__']);
    const m = codec.sealRequest(tensors);
    const a = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(m).toString('base64'),
    })) as { message: string };
    try {
      codec.openResponse(m, new Uint8Array(Buffer.from(a.message, 'base64')));
    } catch {
      // Refused (unknown input): fine, as long as both ends agree on it.
    }
    const ok = codec.sealRequest(x([4, 5, 6]));
    const b = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(ok).toString('base64'),
    })) as { message: string };
    codec.openResponse(ok, new Uint8Array(Buffer.from(b.message, 'base64')));
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(2);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });
});
