import { writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { buildSessionOpen, sealInput, sessionCommitments } from '@firn/client';
import { bytesToHex, type Hex, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';

/** The chain and market the fake job service signs grants for. */
export const FAKE_SESSION_DOMAIN = {
  chainId: 31337,
  jobMarket: '0x00000000000000000000000000000000000000aa' as Hex,
};

/**
 * A requester's valid open of a session on a fresh sealed tiny model (written to `dir` as the
 * node's artifact store would hold it), for enclave `identity`: the job id (from `seed`), the
 * built open and the job's on-chain commitments.
 */
export async function validSessionOpen(
  dir: string,
  identity: { enclaveId: Hex; kemPublicKey: Hex },
  tag: string,
  seed: number,
) {
  const kem = await generateKemKeyPair();
  const sealed = await sealInput(
    tinyLinearModel({ docString: tag }).bytes,
    'application/onnx',
    kem.publicKey,
  );
  writeFileSync(join(dir, sealed.artifactId.slice(2)), sealed.sealed);
  const now = 1_750_000_000;
  const jobId = bytesToHex(sha256(new Uint8Array([seed, seed, 7])));
  const built = await buildSessionOpen({
    jobId,
    model: sealed,
    requesterKey: bytesToHex(generateSigningKey().privateKey),
    enclave: identity,
    resultRecipient: kem.publicKey,
    domain: FAKE_SESSION_DOMAIN,
    grantExpiresAt: now + 600,
    grantIssuedAt: now - 60,
  });
  return { jobId, built, commitments: sessionCommitments(sealed.artifactId) };
}

/** What fakeSessionJobService records: the chain writes it was asked for and the enclave calls. */
export interface FakeSessionJobServiceLog {
  /** 'claimJob' or 'failJob', in order. */
  chainWrites: string[];
  /** Enclave methods called through the supervisor or the pre-flight, in order. */
  enclaveCalls: string[];
}

/**
 * The node's job service as SessionService uses it (`new SessionService(service as never)`), with
 * the real enclave `program` behind its supervisor and pre-flight, a chain that records writes
 * without sending them, and a clock at 1,750,000,000. `afterPreflight` runs once the pre-flight's
 * answer is in, before the open goes on (a test changes the live bounds there).
 */
export function fakeSessionJobService(
  program: { handle(method: string, params: Record<string, unknown>): Promise<unknown> },
  identity: { enclaveId: Hex },
  dir: string,
  open: { jobId: Hex; commitments: { workloadHash: Hex; inputCommitment: Hex } },
  afterPreflight: () => void = () => undefined,
): { service: unknown; log: FakeSessionJobServiceLog } {
  const log: FakeSessionJobServiceLog = { chainWrites: [], enclaveCalls: [] };
  const forward = (method: string, params: Record<string, unknown>) => {
    log.enclaveCalls.push(method);
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
    opts: { deployment: FAKE_SESSION_DOMAIN, logger },
    clients: {},
    jobs: { get: () => undefined, put: () => undefined, update: () => undefined },
    db: { putSession: () => undefined },
    artifacts: { path: (id: string) => join(dir, id.slice(2)) },
    chainMonitor: { requireUp: async () => undefined },
    admit: () => undefined,
    authorizeSubmission: async () => ({
      jobId: open.jobId,
      requester: '0x00000000000000000000000000000000000000bb',
      workloadHash: open.commitments.workloadHash,
      inputCommitment: open.commitments.inputCommitment,
      claimTimeout: 3600,
      deadline: 1_750_003_600n,
    }),
    checkJobTerms: () => undefined,
    requireInputs: async () => undefined,
    // What JobService.preflight sends (jobApi.ts), plus anything a caller adds.
    preflight: async (
      method: string,
      body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] },
      onChain: unknown,
      extra?: Record<string, unknown>,
    ) => {
      const r = await forward(method, {
        jobId: body.jobId,
        enc: body.enc,
        request: body.ciphertext,
        inputPaths: Object.fromEntries(body.inputs.map((id) => [id, join(dir, id.slice(2))])),
        onChain,
        domain: FAKE_SESSION_DOMAIN,
        ...(extra ?? {}),
      });
      afterPreflight();
      return r;
    },
    releasePreflight: async (id: Hex) => {
      await forward('releaseSessionPreflight', { jobId: id });
    },
    chainWrite: async (f: () => Promise<unknown>) => {
      log.chainWrites.push(f.toString().includes('failJob') ? 'failJob' : 'claimJob');
      return { hash: '0x01' };
    },
    clock: () => 1_750_000_000,
    setEnclaveChainTime: async () => undefined,
    claimEnd: () => 1_750_003_600,
    submitKeptProof: async () => undefined,
  };
  return { service, log };
}

/** The HTTP request an open arrives on, as far as SessionService.openSession reads it. */
export const fakeOpenRequest = (): IncomingMessage =>
  ({
    headers: {},
    socket: { setTimeout: () => undefined, localAddress: '127.0.0.1' },
    once: () => undefined,
  }) as unknown as IncomingMessage;
