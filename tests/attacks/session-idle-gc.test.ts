import { mkdtempSync, writeFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
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
import {
  IDLE_GC_MESSAGE_BYTES,
  serveSessionEndpoint,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

// The session child's collections run between requests, never while one is being answered
// (docs/decisions/1500-session-child-collects-between-requests.md). The enclave program runs in
// this process with models that serve in-process (the same serveSessionEndpoint the image's child
// runs), so the collections the endpoint forces (V8 marks them "forced") show in this process's
// `gc` performance entries, on the same clock as the requests.

const now = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-idle-gc-'));
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([4]))),
    measurementRegisters: [sha256(new Uint8Array([4]))],
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
const model = tinyLinearModel({ docString: 'idle-gc' });
const sealedModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
writeFileSync(join(dir, sealedModel.artifactId.slice(2)), sealedModel.sealed);
let seed = 0;

async function openDirect() {
  const jobId = bytesToHex(sha256(new Uint8Array([++seed, 9])));
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
    direct: true,
    directHost: '127.0.0.1',
  })) as OpenSessionResult;
  const codec = new SessionCodec(built.secret, hexBytes(r.salt, 'salt', 32), jobId);
  const d = r.endpoint!.direct!;
  return { jobId, r, codec, port: d.port, token: hexBytes(d.token, 'token', 32) };
}

const close = (jobId: Hex, codec: SessionCodec) =>
  program.handle('closeSession', {
    sessionId: jobId,
    auth: Buffer.from(codec.sealClose()).toString('base64'),
  }) as Promise<CloseSessionResult>;

describe('the session endpoint collects between requests', () => {
  it('after IDLE_GC_MESSAGE_BYTES of traffic it forces a collection, and never inside a request; answers are right', async () => {
    const { jobId, codec, port, token } = await openDirect();
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    const forced: { start: number; end: number }[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const d = (e as unknown as { detail: { flags: number } }).detail;
        if (d.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED)
          forced.push({ start: e.startTime, end: e.startTime + e.duration });
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      const rows = 5000; // 60 KB request, 40 KB answer
      const data = Float32Array.from({ length: rows * 3 }, (_, i) => (i % 7) - 3);
      const windows: { start: number; end: number }[] = [];
      let bytes = 0;
      while (bytes < 1.25 * IDLE_GC_MESSAGE_BYTES) {
        const q = codec.sealRequest({ x: { type: 'float32', dims: [rows, 3], data } });
        const start = performance.now();
        const a = await s.send(q);
        windows.push({ start, end: performance.now() });
        bytes += q.length + a.length;
        const y = codec.openResponse(q, a).y!;
        expect(y.dims).toEqual([rows, 2]);
        // The endpoint's idle turn comes after the answer is written: let it run between requests.
        await new Promise((r) => setImmediate(r));
      }
      for (let i = 0; i < 50 && forced.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(forced.length).toBeGreaterThan(0);
      for (const g of forced)
        for (const w of windows)
          expect(g.end <= w.start || g.start >= w.end, 'a forced collection inside a request').toBe(true);
      const closed = await close(jobId, codec);
      expect(closed.requests).toBe(windows.length);
      expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
    } finally {
      obs.disconnect();
      s.close();
    }
  });
});
