import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FirnJob, JobStatus } from '@firn/chain';
import { computeInputCommitment, type Hex } from '@firn/core';
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

// The attack (red team): `checkOpenJob` holds a submission's inputs from the sweep for an hour
// (decision 1603, 4.) BEFORE it checks that the job is Open, for this node, and that the inputs
// are the ones committed on chain. The requester of any job ever posted (Paid long ago, on any
// node) sends a signed POST /v1/jobs for that job every 59 minutes naming any 16 artifacts stored
// here, its own or a victim's: each submission is refused (409, the job is not Open), but the hold
// is renewed. The artifacts are never deleted and their owners' quota stays taken for good, for
// the price of a free signed request an hour: what decision 1603, 5. refused for re-uploads.
// Promise (decision 1603, docs/api.md "Retention"): an artifact no job record names is deleted
// `retention.uploadSeconds` after its upload and its charge released; only a job (posted with
// escrow, recorded here) keeps another's artifact.

const dir = mkdtempSync(join(tmpdir(), 'firn-hold-renewal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex;
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex;

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;

/**
 * POST /v1/jobs through JobService.submit as the HTTP layer calls it (body parsed), the signature
 * check standing in for a valid one by `onChain.requester` (the attacker signs its own old job).
 */
async function submit(svc: JobService, onChain: FirnJob, inputs: Hex[]) {
  const s = svc as unknown as { authorizeSubmission: () => Promise<FirnJob> };
  s.authorizeSubmission = async () => onChain;
  const req = { headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  const res = { writeHead: () => undefined, end: () => undefined } as unknown as ServerResponse;
  const body = { jobId: `0x${'5a'.repeat(32)}`, enc: `0x${'00'.repeat(32)}`, ciphertext: 'AAAA', inputs };
  try {
    await svc.submit(req, res, body);
    return 'accepted';
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe("attack: keep a victim's artifacts (and quota) for ever by re-submitting an old job", () => {
  it('a refused submission of a job that is not Open holds nothing: the victim upload goes at its retention', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'renew'), clock);
    const victim = addressOf(VICTIM_KEY);
    const bodies = Array.from({ length: 4 }, () => randomBytes(4 * K));
    for (const b of bodies) expect((await upload(svc, VICTIM_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(victim)).toBe(16 * K);
    // The attacker's own job, paid long ago (on another node): it was never submitted here.
    const oldJob = {
      requester: addressOf(ATTACKER_KEY),
      status: JobStatus.Paid,
      escrow: 1n,
      claimTimeout: 3600n,
      deadline: BigInt(clock.now - 86_400),
      inputCommitment: `0x${'00'.repeat(32)}`,
      teeTypeMask: 0xff,
      allowedMeasurements: [],
    } as unknown as FirnJob;
    const ids = bodies.map(idOf);
    // Every 59 minutes for two days: each submission is refused (not Open; once the uploads are
    // gone, their inputs are not stored here) ...
    for (let t = 0; t < 2 * UPLOAD; t += 59 * 60) {
      expect(['E_CONFLICT', 'E_NOT_FOUND']).toContain(await submit(svc, oldJob, ids));
      clock.now += 59 * 60;
      svc.sweepArtifacts();
    }
    // ... and the victim's uploads, named by no job record here, are gone with their charge.
    expect(svc.jobs.get(`0x${'5a'.repeat(32)}` as Hex)).toBeUndefined();
    for (const b of bodies) expect(svc.artifacts.has(idOf(b))).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });
  it('a submission refused after its checks passed (a same-id record appeared meanwhile) releases its hold', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'race'), clock);
    const victim = addressOf(VICTIM_KEY);
    const model = randomBytes(4 * K);
    expect((await upload(svc, VICTIM_KEY, model, clock)).status).toBe(201);
    const id = idOf(model);
    const jobId = `0x${'5a'.repeat(32)}` as Hex;
    // An Open job committing to the victim's artifact: every check passes, so the inputs are held.
    const open = {
      requester: addressOf(ATTACKER_KEY),
      status: JobStatus.Open,
      escrow: 10n ** 18n,
      claimTimeout: 86_400n,
      deadline: BigInt(clock.now + 365 * 86_400),
      inputCommitment: computeInputCommitment([id]),
      teeTypeMask: 0xff,
      allowedMeasurements: [],
    } as unknown as FirnJob;
    // While the submission awaits the chain, another request for the same job id (another body)
    // is recorded, with other inputs: the submission is then refused (E_CONFLICT) after its hold.
    const monitor = svc.chainMonitor as unknown as { requireUp: () => Promise<void> };
    monitor.requireUp = async () => {
      if (svc.jobs.get(jobId) === undefined)
        svc.jobs.put({
          jobId,
          status: 'failed',
          inputs: [],
          createdAt: clock.now,
          updatedAt: clock.now,
          requestDigest: `0x${'00'.repeat(32)}`,
        });
    };
    // A minute before the upload's retention ends: a hold not released would keep it an hour more.
    clock.now += UPLOAD - 60;
    expect(await submit(svc, open, [id])).toBe('E_CONFLICT');
    clock.now += 61;
    svc.sweepArtifacts();
    expect(svc.artifacts.has(id)).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });
});
