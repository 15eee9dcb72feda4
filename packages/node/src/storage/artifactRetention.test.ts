import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ArtifactSweeper,
  artifactExpiry,
  DEFAULT_ARTIFACT_RETENTION as R,
  SWEEP_CHECKS_PER_PASS,
  SWEEP_DELETIONS_PER_PASS,
} from './artifactRetention.ts';
import { ArtifactStore } from './artifactStore.ts';
import { NodeDb } from './nodeDb.ts';
import { QuotaLedger, STORAGE_BLOCK_BYTES as K } from './quota.ts';

const root = mkdtempSync(join(tmpdir(), 'firn-retention-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const id = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex;
const OWNER = `0x${'ab'.repeat(20)}`;

/** A store with `n` one-block artifacts charged to OWNER at time 0, and its sweeper. */
function filled(name: string, n: number) {
  const dir = join(root, name);
  const db = new NodeDb(dir);
  const store = new ArtifactStore(dir);
  const quota = new QuotaLedger(
    dir,
    store.dir,
    { perAddressBytes: 1 << 30, totalBytes: 1 << 30 },
    {
      book: db,
      now: () => 0,
    },
  );
  for (let i = 1; i <= n; i++) {
    writeFileSync(store.path(id(i)), 'x');
    quota.reserve(OWNER, 1).commit(true, 1, id(i));
  }
  return { db, store, quota, sweeper: new ArtifactSweeper(store, quota, db) };
}

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
      const r = sweeper.sweep(R.uploadSeconds);
      expect(r.checked).toBeLessThanOrEqual(SWEEP_CHECKS_PER_PASS);
      expect(r.deleted).toBeLessThanOrEqual(SWEEP_DELETIONS_PER_PASS);
      passes.push(r.deleted);
    }
    expect(passes).toEqual([SWEEP_DELETIONS_PER_PASS, SWEEP_DELETIONS_PER_PASS, 10]);
    expect(readdirSync(store.dir)).toEqual([]);
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
});
