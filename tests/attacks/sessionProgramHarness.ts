import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSessionOpen, SessionCodec, sealInput, sessionCommitments } from '@firn/client';
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
import { createSessionHandlers } from '../../packages/enclave/src/jobs/inferenceSession.ts';
import type { RuntimeModel } from '../../packages/enclave/src/runtime/mlRuntime.ts';
import {
  type ServedSessionEndpoint,
  serveSessionEndpoint,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

/** Options of sessionProgramHarness. */
export interface SessionHarnessOptions {
  /** The enclave's clock, unix seconds (default: a fixed 1,750,000,000); read at each use. */
  now?: () => number;
  /**
   * Called with the transcript the served session reports at close, before the enclave takes it:
   * a test may change it in place (a child subverted by its model misreporting its work).
   */
  onFinish?: (t: { count: bigint; workUnits: bigint }) => void;
  /** Called with each session endpoint once it serves (what the child would run), by session id. */
  onServed?: (sessionId: Hex, served: ServedSessionEndpoint) => void;
}

/**
 * An enclave program with the session handlers and a real session child endpoint (Unix socket,
 * direct TCP when asked), in this process, with a sealed tiny linear model (3 inputs) ready to
 * open sessions on: the set-up the session attack tests share. `tag` names the temp folder and
 * the model; `salt` keeps job IDs and the measurement apart between test files.
 */
export async function sessionProgramHarness(tag: string, salt: number, o: SessionHarnessOptions = {}) {
  const clock = o.now ?? (() => 1_750_000_000);
  const dir = mkdtempSync(join(tmpdir(), `firn-${tag}-`));
  const root = await createSimulatedRoot();
  const platform = await createSimulatedPlatform(root);
  const program = createEnclaveProgram(
    {
      provider: createSimulatedProvider(platform, sha256(new Uint8Array([salt]))),
      measurementRegisters: [sha256(new Uint8Array([salt]))],
      platformId: hexBytes(platform.platformId, 'platformId'),
    },
    createSessionHandlers({
      now: clock,
      maxRequestBytes: 64 * 1024,
      loadModel: async (b): Promise<RuntimeModel> => {
        const m = await loadOnnxModel(b);
        return {
          ...m,
          run: (i) => m.run(i),
          release: () => m.release(),
          serveSession: async (p) => {
            const served = await serveSessionEndpoint(m, { ...p, socketDir: dir });
            o.onServed?.(p.sessionId, served);
            return {
              address: served.address,
              idleMs: async () => served.idleMs(),
              finish: async (auth) => {
                const t = await served.finish(auth);
                o.onFinish?.(t);
                return t;
              },
            };
          },
        };
      },
    }),
  );
  const identity = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
  const requesterKey = bytesToHex(generateSigningKey().privateKey);
  const kem = await generateKemKeyPair();
  const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
  const model = tinyLinearModel({ docString: tag });
  const sealedModel = await sealInput(model.bytes, 'application/onnx', kem.publicKey);
  writeFileSync(join(dir, sealedModel.artifactId.slice(2)), sealedModel.sealed);
  let seed = 0;

  /**
   * Open a session on the sealed model: through the enclave's pipe, or with `direct` on the
   * child's own endpoint (a TCP port on `directHost`, or a Unix socket with `directHost` null).
   */
  async function open(
    direct: boolean,
    directHost: string | null = '127.0.0.1',
    extra: Record<string, unknown> = {},
  ) {
    const now = clock();
    const jobId = bytesToHex(sha256(new Uint8Array([++seed, salt])));
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
      ...(direct ? { direct: true, ...(directHost === null ? {} : { directHost }) } : {}),
      ...extra,
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
  return { dir, program, identity, model, open, x, close };
}
