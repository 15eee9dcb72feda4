import { writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { buildSessionOpen, sealInput, sessionCommitments } from '@firn/client';
import { bytesToHex, type Hex, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { SessionService } from '../../packages/node/src/jobs/sessionApi.ts';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// Attack (host misconfiguration / careless operator, decision 1800). The session poll window is
// checked at the daemon's entry (NodeDaemonOptions.scheduler.sessionPollMs) and by the enclave's
// `openSession`, but not by JobApiOptions.sessionBounds / SessionService (exported from
// @firn/node, "read when used, so tests may narrow them"), and the host's `preflightSession` is
// sent WITHOUT pollMs. So a node whose bounds carry an out-of-range window (5 000 ms here; NaN or
// '20' alike) passes the pre-flight, CLAIMS every session job on chain, and only then is refused
// by the enclave's `openSession` (E_INVALID_INPUT "pollMs must be an integer number of ms, 0 to
// 1000"), after which it sends failJob: two chain writes per open for a value known bad before
// anything was claimed, every requester's job failed, and the requester is shown a refusal naming
// "pollMs", the name of its own openInferenceSession option, for a setting that is the host's.
// Secure outcome: the bad window is refused at the host's entry (naming the field) or at the
// pre-flight, before any chain write.

const { program, identity, dir } = await sessionProgramHarness('rt-hostpoll', 41);
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };

async function validOpen() {
  const kem = await generateKemKeyPair();
  const sealed = await sealInput(
    tinyLinearModel({ docString: 'rt-hostpoll' }).bytes,
    'application/onnx',
    kem.publicKey,
  );
  writeFileSync(join(dir, sealed.artifactId.slice(2)), sealed.sealed);
  const now = 1_750_000_000;
  const jobId = bytesToHex(sha256(new Uint8Array([41, 41, 7])));
  const built = await buildSessionOpen({
    jobId,
    model: sealed,
    requesterKey: bytesToHex(generateSigningKey().privateKey),
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain,
    grantExpiresAt: now + 600,
    grantIssuedAt: now - 60,
  });
  return { jobId, built, commitments: sessionCommitments(sealed.artifactId) };
}

describe('a host session poll window out of range is refused before any reservation or claim', () => {
  it('an out-of-range SessionBounds.pollMs never leads to a claim on chain', async () => {
    const { jobId, built, commitments } = await validOpen();
    const chainWrites: string[] = [];
    const enclaveCalls: string[] = [];
    const forward = (method: string, params: Record<string, unknown>) => {
      enclaveCalls.push(method);
      return program.handle(method, params);
    };
    const logger = {
      child: () => logger,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      debug: () => undefined,
    };
    // The node's job service as the session service uses it; the enclave is the real session program.
    const service = {
      node: {
        identity: { enclaveId: identity.enclaveId },
        supervisor: { call: (m: string, p: Record<string, unknown>) => forward(m, p) },
        rateLimiter: { take: async () => undefined },
      },
      opts: { deployment: domain, logger },
      clients: {},
      jobs: { get: () => undefined, put: () => undefined, update: () => undefined },
      db: { putSession: () => undefined },
      artifacts: { path: (id: string) => join(dir, id.slice(2)) },
      chainMonitor: { requireUp: async () => undefined },
      admit: () => undefined,
      authorizeSubmission: async () => ({
        jobId,
        requester: '0x00000000000000000000000000000000000000bb',
        workloadHash: commitments.workloadHash,
        inputCommitment: commitments.inputCommitment,
        claimTimeout: 3600,
        deadline: 1_750_003_600n,
      }),
      checkJobTerms: () => undefined,
      requireInputs: async () => undefined,
      // What JobService.preflight sends (jobApi.ts), plus anything a caller adds.
      preflight: (
        method: string,
        body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] },
        onChain: unknown,
        extra?: Record<string, unknown>,
      ) =>
        forward(method, {
          jobId: body.jobId,
          enc: body.enc,
          request: body.ciphertext,
          inputPaths: Object.fromEntries(body.inputs.map((id) => [id, join(dir, id.slice(2))])),
          onChain,
          domain,
          ...(extra ?? {}),
        }),
      releasePreflight: async (id: Hex) => {
        await forward('releaseSessionPreflight', { jobId: id });
      },
      chainWrite: async (f: () => Promise<unknown>) => {
        chainWrites.push(f.toString().includes('failJob') ? 'failJob' : 'claimJob');
        return { hash: '0x01' };
      },
      clock: () => 1_750_000_000,
      setEnclaveChainTime: async () => undefined,
      claimEnd: () => 1_750_003_600,
      submitKeptProof: async () => undefined,
    };
    // Refused at the host's own entry, naming the field.
    expect(() => new SessionService(service as never, undefined, { pollMs: 5_000 })).toThrow(
      /SessionBounds\.pollMs/,
    );
    for (const pollMs of [-1, 2.5, Number.NaN, '20'])
      expect(() => new SessionService(service as never, undefined, { pollMs } as never)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT' }),
      );
    // Bounds are read when used: a window changed to one out of range after construction is
    // refused at the open, as the node's own error, before the pre-flight reserves or claims anything.
    const sessions = new SessionService(service as never);
    sessions.bounds.pollMs = 5_000;
    const req = {
      headers: {},
      socket: { setTimeout: () => undefined, localAddress: '127.0.0.1' },
      once: () => undefined,
    } as unknown as IncomingMessage;
    const refusal = await sessions
      .openSession(req, { ...built.body })
      .then(() => undefined)
      .catch((e: unknown) => e);
    sessions.stopSweeper();
    expect(refusal).toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(/SessionBounds\.pollMs/),
    });
    expect({ chainWrites, enclaveCalls }).toEqual({ chainWrites: [], enclaveCalls: [] });
    // With the window back in range the same open passes the pre-flight and claims.
    sessions.bounds.pollMs = 20;
    await sessions.openSession(req, { ...built.body }).catch(() => undefined);
    sessions.stopSweeper();
    expect(enclaveCalls[0]).toBe('preflightSession');
    expect(chainWrites[0]).toBe('claimJob');
  });
});
