import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildSessionOpen, SessionCodec, sealInput, sessionCommitments } from '@firn/client';
import { bytesToHex, type Hex, hexBytes, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { createEnclaveProgram, createSimulatedProvider, type OpenSessionResult } from '@firn/enclave';
import { loadOnnxModel } from '@firn/ml';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { describe, expect, it } from 'vitest';
import { createSessionHandlers } from '../../packages/enclave/src/jobs/inferenceSession.ts';
import type { RuntimeModel } from '../../packages/enclave/src/runtime/mlRuntime.ts';
import { serveSessionEndpoint } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

// A junk close that arrives while a slow request runs: the enclave's closeSession waited (at most
// finishTimeoutMs, 15 s by default) for the session child to finish the requests it holds BEFORE
// the child checked the close's auth. When the requester has a slow request in the child (a big
// batch, a heavy model), a junk close timed out, and a timeout was handled like a failed close:
// the session was dropped, the model released (the slow request itself failed with it), and the
// node failed the job on chain. The sender needs nothing but the public jobId and a way to the
// enclave's closeSession.
//
// Safe behaviour (docs/decisions/1773-close-auth-never-ends-a-session.md): a close whose auth was
// never verified must not end anything; the session keeps serving (the junk close is refused
// E_UNAUTHENTICATED, or at worst E_TIMEOUT with the session left open).

const NOW = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-slow-close-'));
const platform = await createSimulatedPlatform(await createSimulatedRoot());
const SLOW_MS = 1_500;
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([0x28]))),
    measurementRegisters: [sha256(new Uint8Array([0x28]))],
    platformId: hexBytes(platform.platformId, 'platformId'),
  },
  createSessionHandlers({
    now: () => NOW,
    maxRequestBytes: 64 * 1024,
    finishTimeoutMs: 300,
    loadModel: async (b): Promise<RuntimeModel> => {
      const m = await loadOnnxModel(b);
      // A model whose requests take SLOW_MS (a heavy model; the requester's own choice).
      const slow = {
        ...m,
        run: async (i: Parameters<typeof m.run>[0]) => {
          await new Promise((r) => setTimeout(r, SLOW_MS));
          return m.run(i);
        },
      };
      return {
        ...slow,
        release: () => m.release(),
        serveSession: async (p) => {
          const served = await serveSessionEndpoint(slow, { ...p, socketDir: dir });
          return {
            address: served.address,
            idleMs: async () => served.idleMs(),
            finish: (auth) => served.finish(auth),
          };
        },
      };
    },
  }),
);
const identity = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const model = tinyLinearModel({ docString: 'slow-close' });
const sealedModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
writeFileSync(join(dir, sealedModel.artifactId.slice(2)), sealedModel.sealed);

const x = (v: number[]) => ({
  x: { type: 'float32' as const, dims: [v.length / 3, 3], data: Float32Array.from(v) },
});

/** A junk close as a stranger sends it: a session header with a seq far ahead, then random bytes. */
function junkClose(): string {
  const m = Buffer.alloc(10 + 528);
  m[0] = 1;
  m[1] = 0x11;
  m.writeBigUInt64BE(1n << 40n, 2);
  randomBytes(528).copy(m, 10);
  return m.toString('base64');
}

describe('attack: a stranger’s junk close, sent while a slow request runs, drops the session', () => {
  it('the junk close is refused and the session keeps serving', async () => {
    const jobId = bytesToHex(sha256(new Uint8Array([1, 0x28])));
    const built = await buildSessionOpen({
      jobId,
      model: sealedModel,
      requesterKey: bytesToHex(generateSigningKey().privateKey),
      enclave: identity,
      resultRecipient: kem.publicKey,
      domain,
      grantExpiresAt: NOW + 600,
      grantIssuedAt: NOW - 60,
    });
    const r = (await program.handle('openSession', {
      jobId,
      enc: built.body.enc,
      request: built.body.ciphertext,
      inputPaths: { [sealedModel.artifactId]: join(dir, sealedModel.artifactId.slice(2)) },
      onChain: sessionCommitments(sealedModel.artifactId),
      domain,
      direct: true,
    })) as OpenSessionResult;
    const codec = new SessionCodec(built.secret, hexBytes(r.salt, 'salt', 32), jobId);
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    try {
      // The requester's slow request is in the child...
      const a = codec.sealRequest(x([1, 2, 3]));
      const answerA = relay.send(a);
      await new Promise((res) => setTimeout(res, 50));
      // ...when a junk close reaches the enclave.
      const junk = await program.handle('closeSession', { sessionId: jobId, auth: junkClose() }).then(
        () => 'accepted',
        (e: { code?: string }) => e.code,
      );
      expect(junk).not.toBe('accepted');
      codec.openResponse(a, await answerA);
      // The session must still be there for the requester.
      const b = codec.sealRequest(x([3, 2, 1]));
      expect(codec.openResponse(b, await relay.send(b)).y!.dims).toEqual([1, 2]);
      await expect(program.handle('sessionIdle', { sessionId: jobId })).resolves.toMatchObject({
        idleMs: expect.any(Number),
      });
    } finally {
      relay.close();
    }
  }, 20_000);
});
