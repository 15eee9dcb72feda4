import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import {
  addressOfKey as addressOf,
  artifactIdOf as idOf,
  storageService as service,
  uploadAs as upload,
} from '../helpers/storageService.ts';

// The attack (red team): the sweep visited owners in turn (decision 1603, 4.), every charged
// address whether or not it had anything due: a pass visits at most 256 owners and a sweep runs
// passes for 50 ms once a minute. An attacker that makes 200,000 addresses each upload one artifact
// (fresh: not due) fills the round with owners that have nothing to delete; an owner whose uploads
// ARE due waits for the round to reach it, about 90 minutes in the model, and in the meantime its
// quota stays spent and the node's disk stays full.
// Promise (decision 1640): a sweep's work follows the records that are due, not the owners or the
// records that are not: an expired upload goes at the first sweep after its retention.

const dir = mkdtempSync(join(tmpdir(), 'firn-sweep-owners-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// A made-up test key (a repeated byte), never a real account's.
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex;

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;
const OWNERS = 200_000;

describe('attack: drown the sweep in owners with nothing due', () => {
  it("a victim's expired uploads are freed at the first sweep after their retention", async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'owners'), clock);
    const victim = addressOf(VICTIM_KEY);
    const bodies = [randomBytes(K), randomBytes(K)];
    for (const b of bodies) expect((await upload(svc, VICTIM_KEY, b, clock)).status).toBe(201);
    // 200,000 addresses spread over the address space (both sides of the victim's), each with one
    // upload an hour later (none due when the victim's are): their charge records as the upload
    // path writes them (QuotaLedger commit), in address order in one transaction to keep the test
    // fast (no file: none of them is ever read).
    svc.db.db.transaction(() => {
      for (let i = 0; i < OWNERS; i++) {
        const owner = `0x${Math.floor((i * 2 ** 32) / OWNERS)
          .toString(16)
          .padStart(8, '0')}${'ab'.repeat(16)}`;
        svc.db.putArtifactCharge({
          artifactId: `0x${owner.slice(2)}${'00'.repeat(12)}` as Hex,
          owner,
          charged: K,
          storedAt: clock.now + 3600,
        });
      }
    })();
    clock.now += UPLOAD;
    // The node's loop: one sweep (its 50 ms budget).
    const r = svc.sweepArtifacts();
    for (const b of bodies) expect(svc.artifacts.has(idOf(b))).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    // Only the victim's records were read.
    expect(r).toMatchObject({ checked: 2, deleted: 2 });
    svc.stop();
  });
});
