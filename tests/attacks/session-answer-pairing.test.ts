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
import { describe, expect, it } from 'vitest';
import { createSessionHandlers } from '../../packages/enclave/src/jobs/inferenceSession.ts';
import type { RuntimeModel } from '../../packages/enclave/src/runtime/mlRuntime.ts';
import { serveSessionEndpoint } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { tinyLinearModel, tinyLinearReference } from '../../packages/enclave/test/testModels.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';

// The attack: a malicious host hands one of the requester's genuine, not yet delivered request
// messages to closeSession as the "close auth". The enclave (or the session's child) opens it under
// the session keys, sees it is not the close tag and answers E_UNAUTHENTICATED ("the session keeps
// serving") — but the request's sequence number has been consumed without an answer. The host then
// relays the requester's NEXT request, and its answer carries the response sequence number the
// requester expects for the swallowed one: the requester accepts the answer to another request as
// the answer to its own. Responses are paired with requests only by their counters, so one
// consumed-but-unanswered request shifts every later answer by one, silently.

const now = 1_750_000_000;
const dir = mkdtempSync(join(tmpdir(), 'firn-swallow-'));
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const program = createEnclaveProgram(
  {
    provider: createSimulatedProvider(platform, sha256(new Uint8Array([5]))),
    measurementRegisters: [sha256(new Uint8Array([5]))],
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
const requesterKey = bytesToHex(generateSigningKey().privateKey);
const kem = await generateKemKeyPair();
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
const model = tinyLinearModel({ docString: 'swallow' });
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
    direct,
  })) as OpenSessionResult;
  const codec = new SessionCodec(built.secret, hexBytes(r.salt, 'salt', 32), jobId);
  let send: (m: Uint8Array) => Promise<Uint8Array>;
  let done = () => {};
  if (direct) {
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    send = (m) => relay.send(m);
    done = () => relay.close();
  } else {
    send = async (m) => {
      const o = (await program.handle('sessionRequest', {
        sessionId: jobId,
        message: Buffer.from(m).toString('base64'),
      })) as { message: string };
      return new Uint8Array(Buffer.from(o.message, 'base64'));
    };
  }
  return { jobId, codec, send, done };
}

const x = (v: number[]) => ({
  x: { type: 'float32' as const, dims: [v.length / 3, 3], data: Float32Array.from(v) },
});

describe('a host cannot make the enclave swallow a request through a failed close', () => {
  for (const direct of [true, false]) {
    it(`${direct ? 'direct endpoint' : 'enclave pipe'}: the requester never takes the answer to another request as its own`, async () => {
      const { jobId, codec, send, done } = await open(direct);
      try {
        const a = codec.sealRequest(x([1, 2, 3]));
        codec.openResponse(a, await send(a));
        // The requester sends b, then c (pipelined, as the SDK's stream does).
        const bIn = [10, 20, 30];
        const cIn = [-5, 7, 0.5];
        const b = codec.sealRequest(x(bIn));
        const c = codec.sealRequest(x(cIn));
        // The host hands b to the close handler instead of relaying it: "not a close message".
        await expect(
          program.handle('closeSession', { sessionId: jobId, auth: Buffer.from(b).toString('base64') }),
        ).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
        // ... then relays c, and delivers c's answer as the answer to b.
        let answer: Uint8Array | undefined;
        try {
          answer = await send(c);
        } catch {
          answer = undefined; // refusing c is a fine outcome too (the host cannot skip b)
        }
        if (answer !== undefined) {
          let got: number[] | undefined;
          try {
            got = Array.from(codec.openResponse(b, answer).y!.data as Float32Array);
          } catch {
            got = undefined; // the requester detects the substitution: also fine
          }
          // The promise: whatever the requester accepts as b's answer IS b's answer.
          if (got !== undefined) {
            const want = tinyLinearReference(model, bIn, 1);
            for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 3);
          }
        }
      } finally {
        await (program.handle('closeSession', { sessionId: jobId }) as Promise<CloseSessionResult>).catch(
          () => undefined,
        );
        done();
      }
    });
  }

  it('a faked refusal: the answer to one request is never accepted as the answer to the next', async () => {
    const { jobId, codec, send, done } = await open(true);
    try {
      const a = codec.sealRequest(x([1, 2, 3]));
      codec.openResponse(a, await send(a));
      const bIn = [10, 20, 30];
      const cIn = [-5, 7, 0.5];
      const b = codec.sealRequest(x(bIn));
      const c = codec.sealRequest(x(cIn));
      // The host relays b and keeps its answer; the requester is told b was refused (never opens it).
      const answerB = await send(b);
      // The requester's next request c: the host delivers b's answer as c's.
      let got: number[] | undefined;
      try {
        got = Array.from(codec.openResponse(c, answerB).y!.data as Float32Array);
      } catch {
        got = undefined; // detected: fine
      }
      if (got !== undefined) {
        const want = tinyLinearReference(model, cIn, 1);
        for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 3);
      }
    } finally {
      await (program.handle('closeSession', { sessionId: jobId }) as Promise<CloseSessionResult>).catch(
        () => undefined,
      );
      done();
    }
  });
});
