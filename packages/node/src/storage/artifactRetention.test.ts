import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  ArtifactSweeper,
  artifactExpiry,
  DEFAULT_ARTIFACT_RETENTION as R,
  HELD_RECHECK_SECONDS,
  SWEEP_CHECKS_PER_PASS,
  SWEEP_DELETIONS_PER_PASS,
  SWEEP_TIME_BUDGET_MS,
} from './artifactRetention.ts';
import { ArtifactStore } from './artifactStore.ts';
import { NodeDb } from './nodeDb.ts';
import { QuotaLedger, STORAGE_BLOCK_BYTES as K } from './quota.ts';

const root = mkdtempSync(join(tmpdir(), 'firn-retention-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const id = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex;
const OWNER = `0x${'ab'.repeat(20)}`;

/** A store with `n` one-block artifacts charged to OWNER at time 0, and its sweeper. */
function filled(name: string, n: number, now = 0) {
  const clock = { now };
  const dir = join(root, name);
  const db = new NodeDb(dir);
  const store = new ArtifactStore(dir);
  const quota = new QuotaLedger(
    dir,
    store.dir,
    { perAddressBytes: 1 << 30, totalBytes: 1 << 30 },
    {
      book: db,
      now: () => clock.now,
    },
  );
  /** Store artifacts `ids` for `owner` at the clock's time (as the upload path commits them). */
  const put = (owner: string, ids: readonly Hex[]) => {
    for (const a of ids) {
      writeFileSync(store.path(a), 'x');
      quota.reserve(owner, 1).commit(true, 1, a);
    }
  };
  put(
    OWNER,
    Array.from({ length: n }, (_, i) => id(i + 1)),
  );
  return { db, store, quota, clock, put, sweeper: new ArtifactSweeper(store, quota, db) };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => id(from + i));
afterEach(() => vi.restoreAllMocks());

describe('artifactExpiry', () => {
  it('is the upload retention for an artifact no job names', () => {
    expect(artifactExpiry({ storedAt: 100 }, [], R)).toBe(100 + R.uploadSeconds);
  });
  it('is undefined (kept) while any job naming it is not final', () => {
    for (const status of ['accepted', 'claimed', 'running', 'proving', 'proved'] as const)
      expect(
        artifactExpiry(
          { storedAt: 0 },
          [
            { status: 'finalized', updatedAt: 5 },
            { status, updatedAt: 5 },
          ],
          R,
        ),
      ).toBeUndefined();
  });
  it('is the last final job plus the output retention, never before the upload retention', () => {
    const holders = [
      { status: 'finalized' as const, updatedAt: 1_000_000 },
      { status: 'failed' as const, updatedAt: 2_000_000 },
    ];
    expect(artifactExpiry({ storedAt: 0 }, holders, R)).toBe(2_000_000 + R.outputSeconds);
    const shortOutputs = { uploadSeconds: 10 * R.outputSeconds, outputSeconds: 3600 };
    expect(artifactExpiry({ storedAt: 0 }, [{ status: 'failed', updatedAt: 1 }], shortOutputs)).toBe(
      10 * R.outputSeconds,
    );
  });
  it('ignores a job that failed before any claim (refused at pre-flight): it ran nothing', () => {
    const refused = { status: 'failed' as const, updatedAt: 5_000, claimed: false };
    expect(artifactExpiry({ storedAt: 0 }, [refused], R)).toBe(R.uploadSeconds);
    expect(artifactExpiry({ storedAt: 0 }, [refused, { ...refused, claimed: true }], R)).toBe(
      5_000 + R.outputSeconds,
    );
  });
});

describe('ArtifactSweeper', () => {
  it('bounds the work of a pass and goes on where it stopped', () => {
    const n = SWEEP_DELETIONS_PER_PASS * 2 + 10;
    const { store, quota, sweeper } = filled('bounded', n);
    expect(quota.usedBy(OWNER)).toBe(n * K);
    const passes: number[] = [];
    for (let i = 0; i < 5 && readdirSync(store.dir).length > 0; i++) {
      // Budget 0: exactly one pass per call.
      const r = sweeper.sweep(R.uploadSeconds, 0);
      expect(r.passes).toBe(1);
      expect(r.checked).toBeLessThanOrEqual(SWEEP_CHECKS_PER_PASS);
      expect(r.deleted).toBeLessThanOrEqual(SWEEP_DELETIONS_PER_PASS);
      passes.push(r.deleted);
    }
    expect(passes).toEqual([SWEEP_DELETIONS_PER_PASS, SWEEP_DELETIONS_PER_PASS, 10]);
    expect(readdirSync(store.dir)).toEqual([]);
    expect(quota.usedBy(OWNER)).toBe(0);
    expect(quota.total).toBe(0);
  });

  it('runs further passes while there is a backlog, within its time budget', () => {
    const n = SWEEP_DELETIONS_PER_PASS * 4 + 10;
    const { store, quota, sweeper } = filled('budget', n);
    // performance.now advances 30 ms per reading: the first pass ends at 30 ms (under the 50 ms
    // budget, another pass), the second at 60 ms (over: the call returns).
    let t = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => {
      const at = t;
      t += 30;
      return at;
    });
    const r = sweeper.sweep(R.uploadSeconds, SWEEP_TIME_BUDGET_MS);
    expect(r.passes).toBe(2);
    expect(r.deleted).toBe(2 * SWEEP_DELETIONS_PER_PASS);
    expect(r.more).toBe(true);
    vi.restoreAllMocks();
    // With time to spare, one call clears the rest, and stops when nothing is left (no extra pass).
    const rest = sweeper.sweep(R.uploadSeconds, 60_000);
    expect(rest.deleted).toBe(n - 2 * SWEEP_DELETIONS_PER_PASS);
    expect(rest.passes).toBe(3);
    expect(readdirSync(store.dir)).toEqual([]);
    expect(quota.total).toBe(0);
    expect(sweeper.sweep(R.uploadSeconds, 60_000)).toEqual({
      checked: 0,
      deleted: 0,
      freedBytes: 0,
      passes: 1,
      more: false,
    });
  });

  it('attack: a table of records not yet due costs a pass nothing (only due records are read)', () => {
    const { store, clock, put, sweeper } = filled('not-due', 1);
    // 2,000 records stored an hour later, with ids both sides of the due one.
    clock.now = 3600;
    put(`0x${'cd'.repeat(20)}`, range(2, 2000));
    put(OWNER, range(10_000, 100));
    const r = sweeper.sweep(R.uploadSeconds, 0);
    expect(r).toMatchObject({ checked: 1, deleted: 1 });
    expect(store.has(id(1))).toBe(false);
    expect(store.has(id(2))).toBe(true);
  });

  it("attack: one address's backlog of expired records does not delay another's (owners in turn)", () => {
    // OWNER (0xabab...) holds 2,000 expired records stored first; two others one each, stored later
    // (a lower and a higher address than OWNER's, so each round visits one before and one after).
    const { db, store, clock, put, quota, sweeper } = filled('fair', 2000);
    const low = `0x${'01'.repeat(20)}`;
    const high = `0x${'fe'.repeat(20)}`;
    // And 300 expired files found with no record (charged to no one), also stored first.
    for (const a of range(40_000, 300)) {
      writeFileSync(store.path(a), 'x');
      db.putArtifactCharge({ artifactId: a, owner: null, charged: K, storedAt: 0 });
    }
    clock.now = 10;
    put(low, [id(50_000)]);
    put(high, [id(50_001)]);
    // One pass, no more: both victims' uploads go, though OWNER's 2,000 and the 300 are older.
    const r = sweeper.sweep(R.uploadSeconds + 10, 0);
    expect(store.has(id(50_000))).toBe(false);
    expect(store.has(id(50_001))).toBe(false);
    expect(quota.usedBy(low)).toBe(0);
    expect(quota.usedBy(high)).toBe(0);
    expect(r.deleted).toBe(SWEEP_DELETIONS_PER_PASS);
    // The backlogs go on in later passes, oldest first.
    expect(store.has(id(1))).toBe(false);
    expect(store.has(id(40_000))).toBe(false);
    expect(store.has(id(2000))).toBe(true);
  });

  it("attack: an expired upload is found behind its owner's older held records", () => {
    const { db, store, clock, put, sweeper } = filled('held-front', 1000);
    // A running job names all 1,000 of OWNER's records (kept while it runs), stored first.
    db.putJob({
      jobId: id(77_777),
      status: 'running',
      inputs: range(1, 1000),
      createdAt: 0,
      updatedAt: 0,
    });
    clock.now = 5;
    put(OWNER, [id(60_000)]);
    const r = sweeper.sweep(R.uploadSeconds + 5, 60_000);
    expect(store.has(id(60_000))).toBe(false);
    expect(r.deleted).toBe(1);
    // Each due record read once in the call, not again and again until the budget is spent.
    expect(r.checked).toBe(1001);
    expect(store.has(id(1))).toBe(true);
    // Bounded passes (budget 0) reach it too, each reading at most SWEEP_CHECKS_PER_PASS.
    put(OWNER, [id(60_001)]);
    let found = false;
    for (let i = 0; i < 4 && !found; i++) {
      expect(sweeper.sweep(R.uploadSeconds + 5, 0).checked).toBeLessThanOrEqual(SWEEP_CHECKS_PER_PASS);
      found = !store.has(id(60_001));
    }
    expect(found).toBe(true);
  });

  it('attack: 200,000 owners with nothing due cost a sweep nothing (a due owner is swept at its first visit)', () => {
    // The victim's three uploads, due first; its address sorts after every attacker's.
    const { db, store, clock, put, quota, sweeper } = filled('many-owners', 0);
    const victim = `0x${'fe'.repeat(20)}`;
    put(victim, range(1, 3));
    // 200,000 addresses with one upload each, stored an hour later (not due when the victim's are):
    // their charge records as the upload path writes them, in one transaction to keep the test fast.
    clock.now = 3600;
    db.db.transaction(() => {
      for (let i = 0; i < 200_000; i++)
        db.putArtifactCharge({
          artifactId: id(1_000_000 + i),
          owner: `0x${(i + 1).toString(16).padStart(40, '0')}`,
          charged: K,
          storedAt: 3600,
        });
    })();
    const reads = vi.spyOn(db, 'artifactChargesDue');
    // One pass: the victim's owner is the only one visited, its three records the only ones read.
    const r = sweeper.sweep(R.uploadSeconds, 0);
    expect(r).toMatchObject({ checked: 3, deleted: 3, passes: 1 });
    expect(reads).toHaveBeenCalledTimes(1);
    for (const a of range(1, 3)) expect(store.has(a)).toBe(false);
    expect(quota.usedBy(victim)).toBe(0);
    // A minute on, nothing is due: a sweep reads nothing, whatever its budget.
    reads.mockClear();
    expect(sweeper.sweep(R.uploadSeconds + 60, 60_000)).toMatchObject({ checked: 0, passes: 1 });
    expect(reads).not.toHaveBeenCalled();
  });

  it('attack: records a live job keeps are read once, not at every sweep, and go when their time comes', () => {
    const { db, store, sweeper } = filled('kept-once', 1000);
    const job = {
      jobId: id(77_778),
      status: 'running' as const,
      inputs: range(1, 1000),
      createdAt: 0,
      updatedAt: 0,
    };
    db.putJob(job);
    expect(sweeper.sweep(R.uploadSeconds, 60_000)).toMatchObject({ checked: 1000, deleted: 0 });
    // The next sweeps (a minute apart) read none of them again.
    for (let m = 1; m <= 3; m++) expect(sweeper.sweep(R.uploadSeconds + 60 * m, 60_000).checked).toBe(0);
    // Finalized at U + 120: they go exactly outputSeconds later (read once more on the way).
    const final = R.uploadSeconds + 120;
    db.putJob({ ...job, status: 'finalized', updatedAt: final });
    expect(sweeper.sweep(final + R.outputSeconds - 1, 60_000)).toMatchObject({ checked: 1000, deleted: 0 });
    expect(sweeper.sweep(final + R.outputSeconds, 60_000)).toMatchObject({ checked: 1000, deleted: 1000 });
    expect(readdirSync(store.dir)).toEqual([]);
  });

  it('attack: an expired upload a job named before failing unclaimed goes at the next sweep', () => {
    // The job is accepted (live) when a sweep reads the upload, then refused at pre-flight.
    const { db, store, sweeper } = filled('failed-unclaimed', 1);
    const job = {
      jobId: id(77_779),
      status: 'accepted' as const,
      inputs: [id(1)],
      createdAt: 0,
      updatedAt: 0,
    };
    db.putJob(job);
    expect(sweeper.sweep(R.uploadSeconds)).toMatchObject({ checked: 1, deleted: 0 });
    db.putJob({ ...job, status: 'failed', updatedAt: R.uploadSeconds + 10 });
    expect(sweeper.sweep(R.uploadSeconds + 60)).toMatchObject({ checked: 1, deleted: 1 });
    expect(store.has(id(1))).toBe(false);
  });

  it('a shorter retention set at a restart applies to records the sweep had set aside', () => {
    const { db, store, quota, sweeper } = filled('retention-change', 1);
    db.putJob({ jobId: id(77_780), status: 'finalized', inputs: [id(1)], createdAt: 0, updatedAt: 0 });
    // Kept until outputSeconds (7 days) after the job: read once, set aside until then.
    expect(sweeper.sweep(R.uploadSeconds)).toMatchObject({ checked: 1, deleted: 0 });
    // Restarted with an output retention of an hour: due at the upload retention (it has passed).
    const short = new ArtifactSweeper(store, quota, db, {
      uploadSeconds: R.uploadSeconds,
      outputSeconds: 3600,
    });
    expect(short.sweep(R.uploadSeconds + 60)).toMatchObject({ checked: 1, deleted: 1 });
  });

  it('a visit whose records cannot be dropped releases nothing, and the next sweep releases them once', () => {
    const { db, store, quota, sweeper } = filled('failed-drop', 40);
    const drop = vi.spyOn(db, 'dropArtifactCharges').mockImplementationOnce(() => {
      throw new Error('disk I/O error');
    });
    // The first visit unlinked its 32 files, then its transaction failed: the call ends (thrown).
    expect(() => sweeper.sweep(R.uploadSeconds)).toThrow('disk I/O error');
    expect(readdirSync(store.dir).length).toBe(40 - 32);
    expect(quota.usedBy(OWNER)).toBe(40 * K);
    drop.mockRestore();
    // The next sweep reads the same records again (their files already gone) and releases each once.
    expect(sweeper.sweep(R.uploadSeconds + 60)).toMatchObject({ deleted: 40, freedBytes: 40 * K });
    expect(quota.usedBy(OWNER)).toBe(0);
    expect(quota.total).toBe(0);
  });

  it('a held id is not deleted until its hold ends', () => {
    const { store, sweeper } = filled('held', 2);
    sweeper.hold([id(1)], R.uploadSeconds + 60);
    expect(sweeper.sweep(R.uploadSeconds).deleted).toBe(1);
    expect(store.has(id(1))).toBe(true);
    expect(sweeper.sweep(R.uploadSeconds + 60).deleted).toBe(1);
    expect(store.has(id(1))).toBe(false);
  });

  it('a released hold stops holding at once; another hold on the same id stays', () => {
    const { store, sweeper } = filled('held-release', 2);
    const first = sweeper.hold([id(1), id(2)], R.uploadSeconds + 3600);
    const second = sweeper.hold([id(1)], R.uploadSeconds + 3600);
    first();
    first(); // idempotent: the second hold is not dropped by a repeated release
    expect(sweeper.sweep(R.uploadSeconds).deleted).toBe(1);
    expect(store.has(id(2))).toBe(false);
    expect(store.has(id(1))).toBe(true);
    // Released long before its end: the file goes at the next look (HELD_RECHECK_SECONDS), not then.
    second();
    expect(sweeper.sweep(R.uploadSeconds + HELD_RECHECK_SECONDS).deleted).toBe(1);
    expect(store.has(id(1))).toBe(false);
  });

  it('a file that cannot be removed keeps its record and charge for the next pass', () => {
    const { store, quota, sweeper } = filled('stuck', 1);
    // A folder in the file's place: unlink fails with EISDIR/EPERM, not ENOENT.
    rmSync(store.path(id(1)));
    mkdirSync(store.path(id(1)));
    expect(sweeper.sweep(R.uploadSeconds).deleted).toBe(0);
    expect(quota.usedBy(OWNER)).toBe(K);
  });
});

describe('NodeDb artifact index', () => {
  it('a database from before the index lists the artifacts its job records name when opened', () => {
    const dir = join(root, 'migrate');
    const a = new NodeDb(dir);
    a.putJob({
      jobId: id(9),
      status: 'proved',
      inputs: [id(1)],
      outputs: [{ role: 'result', artifactId: id(2), contentType: 'x', size: 1 }],
      createdAt: 1,
      updatedAt: 1,
    });
    a.close();
    // An older version's database: no index rows, user_version 0.
    const raw = new Database(join(dir, 'node.db'));
    raw.exec('DELETE FROM artifact_refs');
    raw.pragma('user_version = 0');
    raw.close();
    const b = new NodeDb(dir);
    expect(b.artifactHolders(id(1))).toEqual([
      { jobId: id(9), status: 'proved', updatedAt: 1, claimed: false },
    ]);
    expect(b.artifactHolders(id(2)).map((h) => h.jobId)).toEqual([id(9)]);
    b.close();
  });

  it("a database from before the sweep's index gets it when opened, and the due query uses it", () => {
    const dir = join(root, 'migrate-index');
    new NodeDb(dir).close();
    const raw = new Database(join(dir, 'node.db'));
    raw.exec('DROP INDEX artifact_charges_owner_age');
    // And from before the sweep's queue (user_version 1): its records' owners are queued when opened.
    raw.prepare('INSERT INTO artifact_charges VALUES (?, ?, ?, ?)').run(id(4), OWNER, K, 3);
    raw.exec('DELETE FROM artifact_sweep_queue');
    raw.pragma('user_version = 1');
    raw.close();
    const b = new NodeDb(dir);
    expect(b.sweepQueueHead(3)).toMatchObject({ owner: OWNER, at: 3 });
    b.dropArtifactCharge(id(4));
    const plan = (sql: string) =>
      (b.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join();
    expect(
      plan(
        "SELECT artifact_id, owner, charged, stored_at FROM artifact_charges WHERE owner = 'x' AND stored_at <= 5 AND (stored_at, artifact_id) > (0, '') ORDER BY stored_at, artifact_id LIMIT 3",
      ),
    ).toMatch(/USING (COVERING )?INDEX artifact_charges_owner_age \(owner=\? AND \(stored_at,artifact_id\)>/);
    b.putArtifactCharge({ artifactId: id(3), owner: null, charged: K, storedAt: 7 });
    b.putArtifactCharge({ artifactId: id(2), owner: OWNER, charged: K, storedAt: 7 });
    b.putArtifactCharge({ artifactId: id(1), owner: OWNER, charged: K, storedAt: 8 });
    const from = { storedAt: Number.MIN_SAFE_INTEGER, artifactId: '' };
    expect(b.artifactChargesDue(OWNER, 8, from, 10).map((c) => c.artifactId)).toEqual([id(2), id(1)]);
    expect(b.artifactChargesDue(OWNER, 7, from, 10).map((c) => c.artifactId)).toEqual([id(2)]);
    expect(b.artifactChargesDue(OWNER, 8, { storedAt: 7, artifactId: id(2) }, 10).length).toBe(1);
    expect(b.artifactChargesDue(null, 8, from, 10).map((c) => c.artifactId)).toEqual([id(3)]);
    // The sweep's queue: each owner at its oldest record's time (OWNER's row stays at 3 until a
    // sweep finds it has nothing then), the one with no owner ('') before an address on a tie.
    expect(b.sweepQueueHead(2)).toBeUndefined();
    expect(b.sweepQueueHead(7)).toMatchObject({ owner: OWNER, at: 3 });
    b.db.prepare('UPDATE artifact_sweep_queue SET at = 7 WHERE owner = ?').run(OWNER);
    expect(b.sweepQueueHead(7)).toMatchObject({ owner: null, at: 7 });
    expect(b.nextArtifactStoredAfter(OWNER, 7)).toBe(8);
    expect(b.nextArtifactStoredAfter(null, 7)).toBeUndefined();
    b.close();
  });
});
