import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FirnJob, JobStatus } from '@firn/chain';
import { computeInputCommitment, FirnError, type Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import {
  addressOfKey as addressOf,
  artifactIdOf as idOf,
  storageService as service,
  uploadAs as upload,
} from '../helpers/storageService.ts';

// Attack (requester): pin any stored artifact, and its owner's quota, past its upload retention for
// good. `checkOpenJob` holds a submission's inputs for an hour once its checks pass (the fix of
// storage-hold-renewal: only for a job that is Open with those very inputs committed). The session
// path (POST /v1/sessions) then asks the enclave to pre-flight the request and, on a refusal,
// "records nothing and costs no gas" (sessionApi openCounted): no job record is written, so nothing
// marks the hold as used. The attacker posts ONE job on chain (1 wei escrow, deadline a year away,
// reclaimable at the end) committing to the artifact's id (a content hash: its own upload, or a
// victim's whose bytes it knows, e.g. a public model), and every 59 minutes opens a session for it
// with a request the enclave cannot open. Each open is refused at pre-flight and renews the hold:
// the artifact is never deleted and its owner's quota stays taken, for a free signed request an hour.
// Repeated over many sybil uploads it pins the node's whole total (storage-full-node-still-claims).
// Promise (decision 1603, docs/api.md "Retention"): an artifact no job record names is deleted
// `retention.uploadSeconds` after its upload and its charge released.
const dir = mkdtempSync(join(tmpdir(), 'firn-session-preflight-hold-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex;
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex;
const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;
const JOB_ID = `0x${'5b'.repeat(32)}` as Hex;

/** POST /v1/sessions as the HTTP layer calls it, the signature standing in for the requester's. */
async function openSession(svc: JobService, onChain: FirnJob, input: Hex) {
  (svc as unknown as { authorizeSubmission: () => Promise<FirnJob> }).authorizeSubmission = async () =>
    onChain;
  const req = Object.assign(new EventEmitter(), {
    headers: {},
    socket: { remoteAddress: '127.0.0.1', setTimeout: () => undefined },
  }) as unknown as IncomingMessage;
  const body = { jobId: JOB_ID, enc: `0x${'00'.repeat(32)}`, ciphertext: 'AAAA', inputs: [input] };
  try {
    await svc.sessions.openSession(req, body);
    return 'opened';
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe("attack: keep a victim's artifact for ever with session opens the enclave refuses", () => {
  it('the artifact is still deleted at its upload retention', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'node'), clock);
    // The enclave refuses the attacker's request at pre-flight (it cannot open it).
    const sup = (
      svc as unknown as { node: { supervisor: { call: (m: string, a: unknown) => Promise<unknown> } } }
    ).node.supervisor;
    const call = sup.call.bind(sup);
    sup.call = async (m: string, a: unknown) => {
      if (m === 'preflightSession') throw new FirnError('E_JOB_INVALID', 'request cannot be opened');
      return call(m, a);
    };
    const victim = addressOf(VICTIM_KEY);
    const model = randomBytes(4 * K);
    expect((await upload(svc, VICTIM_KEY, model, clock)).status).toBe(201);
    const id = idOf(model);
    // The attacker's one job, Open on chain, committing to the victim's artifact.
    const job = {
      requester: addressOf(ATTACKER_KEY),
      status: JobStatus.Open,
      escrow: 1n,
      claimTimeout: 3600n,
      deadline: BigInt(clock.now + 365 * 86_400),
      workloadHash: `0x${'00'.repeat(32)}`,
      inputCommitment: computeInputCommitment([id]),
      teeTypeMask: 0xff,
      allowedMeasurements: [],
    } as unknown as FirnJob;
    const codes = new Set<string | undefined>();
    for (let t = 0; t < 3 * UPLOAD; t += 59 * 60) {
      codes.add(await openSession(svc, job, id));
      clock.now += 59 * 60;
      svc.sweepArtifacts();
    }
    // Every open was refused (no session, no claim, no job record here) ...
    expect([...codes]).toEqual(['E_JOB_INVALID']);
    expect(svc.jobs.get(JOB_ID)).toBeUndefined();
    // ... so after three upload retentions the victim's artifact must be gone with its charge.
    expect(svc.artifacts.has(id)).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  }, 60_000);
});
