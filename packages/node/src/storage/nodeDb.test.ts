import { mkdirSync, mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFirnError, type Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { JobStore } from './jobStore.ts';
import { MAX_EVENTS_PER_JOB, NodeDb } from './nodeDb.ts';

const id = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex;
const fresh = () => mkdtempSync(join(tmpdir(), 'firn-nodedb-'));

describe('the node database (SQLite)', () => {
  it('keeps jobs, events with sequence numbers, sessions and cursors across a reopen', () => {
    const dir = fresh();
    const a = new NodeDb(dir);
    const jobs = new JobStore(a);
    jobs.put({ jobId: id(1), status: 'running', inputs: [id(2)], createdAt: 1, updatedAt: 1 });
    expect([a.appendEvent(id(1), 'e0'), a.appendEvent(id(1), 'e1'), a.appendEvent(id(1), 'e2')]).toEqual([
      0, 1, 2,
    ]);
    expect(a.appendEvent(id(3), 'other')).toBe(0);
    a.putSession({ jobId: id(4), openedAt: 1, lastUsed: 2, requests: 3, state: 'open' });
    a.setCursor('verifier', 1234n);
    a.close();
    // A restarted node reads everything back: the requester can follow the events again.
    const b = new NodeDb(dir);
    expect(new JobStore(b).get(id(1))?.status).toBe('running');
    expect(new JobStore(b).withStatus('running').map((r) => r.jobId)).toEqual([id(1)]);
    expect(b.eventsAfter(id(1), -1)).toEqual([
      { seq: 0, message: 'e0' },
      { seq: 1, message: 'e1' },
      { seq: 2, message: 'e2' },
    ]);
    expect(b.eventsAfter(id(1), 1).map((e) => e.seq)).toEqual([2]);
    expect(b.appendEvent(id(1), 'e3')).toBe(3);
    expect(b.eventCount(id(1))).toBe(4);
    expect(b.getSession(id(4))?.requests).toBe(3);
    expect(b.cursor('verifier')).toBe(1234n);
    expect(b.cursor('nothing')).toBeUndefined();
    b.close();
  });

  it('caps the events of one job (a flood from the enclave cannot fill the disk)', () => {
    const db = new NodeDb(fresh());
    const insert = db.db.prepare('INSERT INTO events (job_id, seq, message) VALUES (?, ?, ?)');
    db.db.transaction(() => {
      for (let i = 0; i < MAX_EVENTS_PER_JOB; i++) insert.run(id(9), i, 'x');
    })();
    expect(db.appendEvent(id(9), 'one too many')).toBeUndefined();
    expect(db.appendEvent(id(9), 'x'.repeat(2_000_000))).toBeUndefined();
    expect(db.eventCount(id(9))).toBe(MAX_EVENTS_PER_JOB);
    db.close();
  });

  it('a full database is E_STORAGE_FULL, not a crash, and it reads on', () => {
    const db = new NodeDb(fresh());
    const jobs = new JobStore(db);
    jobs.put({ jobId: id(1), status: 'accepted', inputs: [id(2)], createdAt: 1, updatedAt: 1 });
    // SQLite's own "database or disk is full" (SQLITE_FULL), as on a full filesystem.
    const pages = (db.db.pragma('page_count', { simple: true }) as number) + 1;
    db.db.pragma(`max_page_count = ${pages}`);
    let err: unknown;
    try {
      for (let i = 0; i < 10_000; i++) db.appendEvent(id(1), 'y'.repeat(4000));
    } catch (e) {
      err = e;
    }
    expect(isFirnError(err) && err.code).toBe('E_STORAGE_FULL');
    expect((err as Error).message).toMatch(/disk is full/);
    expect(db.writable()).toBe(true); // a tiny write may still fit; reads always work
    expect(jobs.get(id(1))?.status).toBe('accepted');
    db.close();
  });

  it('imports job records an earlier version kept as JSON files', () => {
    const dir = fresh();
    mkdirSync(join(dir, 'jobs'));
    writeFileSync(
      join(dir, 'jobs', `${id(7).slice(2)}.json`),
      JSON.stringify({ jobId: id(7), status: 'proved', inputs: [], createdAt: 1, updatedAt: 2 }),
    );
    writeFileSync(join(dir, 'jobs', 'junk.json'), '{');
    const db = new NodeDb(dir);
    expect(new JobStore(db).get(id(7))?.status).toBe('proved');
    expect(existsSync(join(dir, 'jobs.imported'))).toBe(true);
    db.close();
  });
});
