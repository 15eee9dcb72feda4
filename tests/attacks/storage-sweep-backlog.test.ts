import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import {
  addressOfKey as addressOf,
  artifactIdOf as idOf,
  storageService as service,
  uploadAs as upload,
} from '../helpers/storageService.ts';

// The attack (red team): the sweep is bounded per pass (decision 1603, 4.: 512 charge records
// looked at, 128 deletions, once a minute) but not per cycle: a pass looks at the next 512 records
// in artifact-id order, whatever their expiry. An attacker that stores many tiny artifacts (each
// one byte, charged one 4 KiB block: its 4 GiB quota buys 1,048,576 records; eight addresses 8
// million) makes one trip of the cursor round the table take records / 512 minutes: 1 M records,
// 34 hours; 8 M, 11 days. Every other address's expired upload waits that long before it is
// deleted and its quota given back, and the attacker's own expired records go at 128 a minute
// (184,320 a day), so one burst of uploads holds its quota days past the retention for free.
// Promise (decision 1603, docs/api.md "Retention"): an artifact no job names is deleted
// `retention.uploadSeconds` after its upload and its charge released (the sweep runs once a
// minute: minutes late, not days).

const dir = mkdtempSync(join(tmpdir(), 'firn-sweep-backlog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex;
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex;

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;
afterEach(() => vi.restoreAllMocks());

describe("attack: delay everyone's retention with a table of tiny records", () => {
  it("a victim's expired upload is freed within ten sweeps (ten minutes) of its retention, whatever else is stored", async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'backlog'), clock);
    const victim = addressOf(VICTIM_KEY);
    // The victim's upload; its id is in the upper sixteenth of the id order (one in 16 draws).
    let body = randomBytes(K);
    for (let i = 0; i < 1000 && !idOf(body).startsWith('0xf'); i++) body = randomBytes(K);
    expect((await upload(svc, VICTIM_KEY, body, clock)).status).toBe(201);
    expect(svc.quota.usedBy(victim)).toBe(K);
    // The attacker's 20,000 one-byte uploads (2% of one address's default quota), uploaded an hour
    // later, so none has expired when the victim's has: their charge records as the upload path
    // writes them (QuotaLedger commit), put in one transaction to keep the test fast.
    const attacker = addressOf(ATTACKER_KEY);
    svc.db.db.transaction(() => {
      for (let i = 0; i < 20_000; i++)
        svc.db.putArtifactCharge({
          artifactId: idOf(Buffer.from(`tiny ${i}`)),
          owner: attacker,
          charged: K,
          storedAt: clock.now + 3600,
        });
    })();
    clock.now += UPLOAD;
    // The node's loop: one pass a minute.
    for (let minute = 0; minute < 10 && svc.artifacts.has(idOf(body)); minute++) {
      svc.sweepArtifacts();
      clock.now += 60;
    }
    expect(svc.artifacts.has(idOf(body))).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });

  it("an address's own expired backlog is swept at every tick of the node's loop until it is gone, not once a minute", () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'own-backlog'), clock);
    const attacker = addressOf(ATTACKER_KEY);
    svc.db.db.transaction(() => {
      for (let i = 0; i < 2000; i++)
        svc.db.putArtifactCharge({
          artifactId: idOf(Buffer.from(`own ${i}`)),
          owner: attacker,
          charged: K,
          storedAt: clock.now,
        });
    })();
    clock.now += UPLOAD;
    const sweepIfDue = () => (svc as unknown as { sweepIfDue: () => void }).sweepIfDue();
    const left = () => svc.db.artifactChargesAfter('', 1).length;
    const sweep = vi.spyOn(svc.sweeper, 'sweep');
    // Each sweep's time runs out after one pass (performance.now advances 60 ms a reading).
    let t = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => (t += 60));
    sweepIfDue();
    expect(sweep).toHaveBeenCalledTimes(1);
    // The next tick (5 s on, well within the minute) sweeps again while work is left.
    for (let tick = 0; tick < 40 && left() > 0; tick++) sweepIfDue();
    expect(left()).toBe(0);
    expect(sweep.mock.calls.length).toBeGreaterThan(2);
    // With nothing left, the next tick within the minute does not sweep.
    const calls = sweep.mock.calls.length;
    sweepIfDue();
    sweepIfDue();
    expect(sweep.mock.calls.length).toBe(calls);
    svc.stop();
  });
});
