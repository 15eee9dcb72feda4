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

// Attack (host misconfiguration racing an open; decision 1800 "Checked at every entry": "bounds
// are read when used: a window changed out of range is the node's error, E_UNAVAILABLE, before any
// slot is reserved or job claimed"). SessionService.openSession checks `this.bounds.pollMs` once,
// before the pre-flight, then awaits the pre-flight (up to PREFLIGHT_TIMEOUT_MS), the inputs and
// the claim (the chain's write queue: seconds), and reads `this.bounds.pollMs` AGAIN when it
// calls the enclave's openSession. A window changed out of range meanwhile (the operator's code
// narrowing or mis-setting the live bounds while a requester's open is in flight) is never
// checked by the host: the job is claimed on chain, the enclave refuses the open
// (E_INVALID_INPUT naming pollMs, the requester's own option's name), and the node sends failJob:
// two chain writes and a failed job for a value the node would have refused before anything.
//
// Secure outcome: the open uses the window it checked (one read), or a change is refused before
// the claim: no failJob after a claim, and no refusal naming "pollMs" to the requester.

const { program, identity, dir } = await sessionProgramHarness('rt-hostpoll2', 43);
const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };

describe('the host reads its poll window once per open', () => {
  it('a window changed out of range during the pre-flight leads to no claim that is then failed', async () => {
    const kem = await generateKemKeyPair();
    const sealed = await sealInput(
      tinyLinearModel({ docString: 'rt-hostpoll2' }).bytes,
      'application/onnx',
      kem.publicKey,
    );
    writeFileSync(join(dir, sealed.artifactId.slice(2)), sealed.sealed);
    const now = 1_750_000_000;
    const jobId = bytesToHex(sha256(new Uint8Array([43, 43, 9])));
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
    const commitments = sessionCommitments(sealed.artifactId);
    const chainWrites: string[] = [];
    const enclaveCalls: string[] = [];
    let sessions: SessionService | undefined;
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
      // What JobService.preflight sends (jobApi.ts). While it is in flight, the operator's code sets
      // the live window out of range (5 s).
      preflight: async (
        method: string,
        body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] },
        onChain: unknown,
      ) => {
        const r = await forward(method, {
          jobId: body.jobId,
          enc: body.enc,
          request: body.ciphertext,
          inputPaths: Object.fromEntries(body.inputs.map((id) => [id, join(dir, id.slice(2))])),
          onChain,
          domain,
        });
        sessions!.bounds.pollMs = 5_000;
        return r;
      },
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
    sessions = new SessionService(service as never);
    expect(sessions.bounds.pollMs).toBe(20);
    const req = {
      headers: {},
      socket: { setTimeout: () => undefined, localAddress: '127.0.0.1' },
      once: () => undefined,
    } as unknown as IncomingMessage;
    const outcome = await sessions
      .openSession(req, { ...built.body })
      .then(() => 'opened')
      .catch((e: unknown) => e);
    sessions.stopSweeper();
    expect(enclaveCalls[0]).toBe('preflightSession');
    // Either the open went through with the window the node checked (20 ms), or it was refused
    // before the claim; never claimed and then failed for the host's own setting.
    const said =
      outcome === 'opened'
        ? 'opened'
        : `${(outcome as { code?: string }).code}: ${(outcome as Error).message}`;
    expect(chainWrites, `chain writes; the open: ${said}`).not.toContain('failJob');
  });
});
