import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FirnJob, JobStatus } from '@firn/chain';
import { computeInputCommitment, type Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import {
  addressOfKey as addressOf,
  artifactIdOf as idOf,
  runStorageJob as runJob,
  storageService as service,
  uploadAs as upload,
} from '../helpers/storageService.ts';

// The attack (red team): uploads were never garbage-collected. With the default quotas (4 GiB per
// address, 32 GiB in all, decision 1550) eight funded addresses each upload up to their quota,
// name the artifacts in no job, and the node's store is full for good: every later upload, fetched
// input and job output is refused E_QUOTA_EXCEEDED, and nothing ever frees the bytes.
// Promise (decision 1603, docs/api.md "Limits"): every stored byte has an owner and a lifetime. An
// artifact no job names is deleted `retention.uploadSeconds` after its upload and its charge
// released; a job's inputs and outputs are kept until the job is final on this node's record
// (paid, failed, slashed) plus `retention.outputSeconds`, and never while a job not yet final
// names them: a requester cannot make the node drop a result a verifier still needs.
// Time is the node's clock, passed in (no sleep).

const dir = mkdtempSync(join(tmpdir(), 'firn-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex; // a made-up test key
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex; // a made-up test key

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;
const OUTPUT = DEFAULT_ARTIFACT_RETENTION.outputSeconds;

describe('attack: fill the store with uploads no job names', () => {
  it('the bytes are freed after the upload retention and a new upload succeeds', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'fill'), clock);
    const attacker = addressOf(ATTACKER_KEY);
    const bodies = Array.from({ length: 4 }, () => randomBytes(4 * K));
    for (const b of bodies) expect((await upload(svc, ATTACKER_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(attacker)).toBe(16 * K);
    // The quota is full: one more is refused.
    expect((await upload(svc, ATTACKER_KEY, randomBytes(K), clock)).code).toBe('E_QUOTA_EXCEEDED');

    // One second before the retention ends nothing goes; the owner cannot be refused for ever either.
    clock.now += UPLOAD - 1;
    expect(svc.sweepArtifacts().deleted).toBe(0);
    expect((await upload(svc, ATTACKER_KEY, randomBytes(K), clock)).code).toBe('E_QUOTA_EXCEEDED');

    clock.now += 1;
    const swept = svc.sweepArtifacts();
    expect(swept).toMatchObject({ deleted: 4, freedBytes: 16 * K });
    for (const b of bodies) expect(svc.artifacts.has(idOf(b))).toBe(false);
    expect(svc.quota.usedBy(attacker)).toBe(0);
    expect(svc.quota.total).toBe(0);
    expect((await upload(svc, ATTACKER_KEY, randomBytes(3 * K), clock)).status).toBe(201);
    svc.stop();
  });

  it('re-uploading a stored artifact (a free signed intent, no bytes) does not keep it, or its charge, alive', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'reupload'), clock);
    const b = randomBytes(K);
    expect((await upload(svc, ATTACKER_KEY, b, clock)).status).toBe(201);
    // Already stored: answered 200, nothing written or charged, the retention not restarted,
    // whether the owner or another address sends it.
    clock.now += UPLOAD - 10;
    expect((await upload(svc, ATTACKER_KEY, b, clock)).status).toBe(200);
    expect((await upload(svc, VICTIM_KEY, b, clock)).status).toBe(200);
    clock.now += 10;
    expect(svc.sweepArtifacts().deleted).toBe(1);
    expect(svc.quota.usedBy(addressOf(ATTACKER_KEY))).toBe(0);
    // Uploaded again after it went: stored and charged anew, for a new retention.
    expect((await upload(svc, ATTACKER_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(addressOf(ATTACKER_KEY))).toBe(K);
    svc.stop();
  });
});

describe("the node's background loop", () => {
  it('sweeps on the finalizer tick, with no call from outside', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'loop'), clock, undefined, {
      finalizeIntervalMs: 20,
      artifactSweepIntervalMs: 20,
      chainCheckIntervalMs: 60_000,
    });
    const b = randomBytes(K);
    expect((await upload(svc, ATTACKER_KEY, b, clock)).status).toBe(201);
    clock.now += UPLOAD;
    await svc.start();
    for (let i = 0; i < 200 && svc.artifacts.has(idOf(b)); i++) await new Promise((r) => setTimeout(r, 25));
    expect(svc.artifacts.has(idOf(b))).toBe(false);
    expect(svc.quota.usedBy(addressOf(ATTACKER_KEY))).toBe(0);
    svc.stop();
  });
});

describe('attack: make the node drop what a job or a verifier needs', () => {
  it("a Proved job's outputs (and inputs) are kept until the job is final plus the output retention", async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'proved'), clock);
    const requester = addressOf(VICTIM_KEY);
    const input = randomBytes(K);
    expect((await upload(svc, VICTIM_KEY, input, clock)).status).toBe(201);
    const { jobId, record } = await runJob(svc, 1, requester, [idOf(input)], clock.now);
    expect(record.status).toBe('proving');
    const output = record.outputs![0]!.artifactId;
    expect(svc.quota.usedBy(requester)).toBe(4 * K);
    // The chain took the proof; the challenge window runs, then the node sits unpaid for years:
    // a job not final keeps its artifacts whatever the clock says.
    svc.jobs.update(jobId, { status: 'proved' }, clock.now);
    // The attacker names the output in a job of its own that fails at once: a final job beside a
    // live one does not end the output's life.
    const other = `0x${'0d'.repeat(32)}` as Hex;
    svc.jobs.put({
      jobId: other,
      status: 'failed',
      inputs: [output],
      createdAt: clock.now,
      updatedAt: clock.now,
    });
    clock.now += 10 * 365 * 86_400;
    expect(svc.sweepArtifacts().deleted).toBe(0);
    expect(svc.artifacts.has(output)).toBe(true);
    expect(svc.artifacts.has(idOf(input))).toBe(true);
    expect(((await svc.result(jobId)) as { outputs: unknown[] }).outputs).toHaveLength(1);

    // Paid on chain: kept for the output retention after that, then deleted and released.
    svc.jobs.update(jobId, { status: 'finalized' }, clock.now);
    clock.now += OUTPUT - 1;
    expect(svc.sweepArtifacts().deleted).toBe(0);
    expect(svc.artifacts.has(output)).toBe(true);
    clock.now += 1;
    expect(svc.sweepArtifacts()).toMatchObject({ deleted: 2, freedBytes: 4 * K });
    expect(svc.artifacts.has(output)).toBe(false);
    expect(svc.quota.usedBy(requester)).toBe(0);
    await expect(svc.result(jobId)).rejects.toThrow(/no longer stored here/);
    svc.stop();
  });

  it('an artifact named by a live job is never deleted; named by several, it lives until the last expires', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'live'), clock);
    const owner = addressOf(VICTIM_KEY);
    const model = randomBytes(K);
    const id = idOf(model);
    expect((await upload(svc, VICTIM_KEY, model, clock)).status).toBe(201);
    const a = `0x${'0a'.repeat(32)}` as Hex;
    const b = `0x${'0b'.repeat(32)}` as Hex;
    // A job that failed at once, and a session still running on the same model.
    svc.jobs.put({ jobId: a, status: 'failed', inputs: [id], createdAt: clock.now, updatedAt: clock.now });
    svc.jobs.put({ jobId: b, status: 'running', inputs: [id], createdAt: clock.now, updatedAt: clock.now });
    clock.now += OUTPUT + UPLOAD;
    expect(svc.sweepArtifacts().deleted).toBe(0);
    expect(svc.artifacts.has(id)).toBe(true);
    svc.jobs.update(b, { status: 'finalized' }, clock.now);
    clock.now += OUTPUT - 1;
    expect(svc.sweepArtifacts().deleted).toBe(0);
    clock.now += 1;
    expect(svc.sweepArtifacts().deleted).toBe(1);
    expect(svc.quota.usedBy(owner)).toBe(0);
    svc.stop();
  });

  it('inputs a submission is checking are held from the sweep until its record names them', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'held'), clock);
    const input = randomBytes(K);
    expect((await upload(svc, VICTIM_KEY, input, clock)).status).toBe(201);
    clock.now += UPLOAD;
    // checkOpenJob holds the inputs once the job passed its checks (Open, these inputs committed);
    // a refused submission holds nothing (storage-hold-renewal.test.ts).
    const inputs = [idOf(input)];
    const open = {
      requester: addressOf(VICTIM_KEY),
      status: JobStatus.Open,
      escrow: 10n ** 18n,
      claimTimeout: 86_400n,
      deadline: BigInt(clock.now + 86_400),
      inputCommitment: computeInputCommitment(inputs),
      teeTypeMask: 0xff,
      allowedMeasurements: [],
    } as unknown as FirnJob;
    await svc.checkOpenJob({ jobId: `0x${'0c'.repeat(32)}`, inputs }, open);
    expect(svc.sweepArtifacts().deleted).toBe(0);
    expect(svc.artifacts.has(idOf(input))).toBe(true);
    clock.now += 3600;
    expect(svc.sweepArtifacts().deleted).toBe(1);
    svc.stop();
  });
});

describe('a restart in the middle of a sweep', () => {
  it('leaves the quota ledger and the files agreeing, whichever half of a deletion was done', async () => {
    const clock = { now: 1_900_000_000 };
    const data = join(dir, 'restart');
    const svc = service(data, clock);
    const owner = addressOf(ATTACKER_KEY);
    const [x, y] = [randomBytes(K), randomBytes(2 * K)];
    for (const b of [x, y]) expect((await upload(svc, ATTACKER_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(owner)).toBe(3 * K);
    // Crash after the unlink, before the record was dropped: x's file is gone, its charge kept.
    unlinkSync(svc.artifacts.path(idOf(x)));
    // Crash after the record was dropped, before the unlink (the other order): y stays unrecorded.
    svc.db.dropArtifactCharge(idOf(y));
    svc.stop();
    svc.db.close();

    const again = service(data, clock);
    // x's charge is released with its file; y is counted in the total, with no owner.
    expect(again.quota.usedBy(owner)).toBe(0);
    expect(again.quota.total).toBe(2 * K);
    expect(again.db.artifactCharge(idOf(x))).toBeUndefined();
    expect(again.db.artifactCharge(idOf(y))).toMatchObject({ owner: null, charged: 2 * K });
    // ... and deleted like an unnamed upload once its retention (from the restart) ends.
    clock.now += UPLOAD;
    expect(again.sweepArtifacts()).toMatchObject({ deleted: 1, freedBytes: 2 * K });
    expect(existsSync(again.artifacts.path(idOf(y)))).toBe(false);
    expect(again.quota.total).toBe(0);
    again.stop();
  });
});
