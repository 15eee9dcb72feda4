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
  runStorageJob as runJob,
  storageService as service,
  uploadAs as upload,
} from '../helpers/storageService.ts';

// The attack (red team): a job's output whose bytes are already stored here (the same content as
// an earlier upload: a deterministic job's known result, uploaded by anyone more than
// `uploadSeconds` ago and named by no job) is adopted without a new charge, so its charge record
// keeps the old upload's time and no job names it until the job record moves to `proving`. The
// node awaits between storing the outputs and writing that record (copying each output to the
// shared folder); a sweep tick landing there deletes the output as an expired upload. The job is
// then proved on chain with a result the node no longer holds (GET result: not found), and the
// verifiers and the requester cannot fetch it.
// Promise (decision 1603): the sweep never deletes a file a live or proved job needs.

const dir = mkdtempSync(join(tmpdir(), 'firn-retention-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex; // a made-up test key
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex; // a made-up test key

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;

describe('attack: an output equal to an expired upload, swept while the job stores its outputs', () => {
  it('keeps the output of a job that is proving', async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'window'), clock);
    // The first job's enclave writes Buffer.alloc(3 K, 1): uploaded a day earlier, named by no job.
    const known = Buffer.alloc(3 * K, 1);
    expect((await upload(svc, ATTACKER_KEY, known, clock)).status).toBe(201);
    clock.now += UPLOAD;
    // The node's background sweep fires while the job stores its outputs (one tick, at an await).
    const s = svc as unknown as Record<string, unknown>;
    const copy = s.copyToShared as (id: Hex) => Promise<void>;
    s.copyToShared = async (id: Hex) => {
      svc.sweepArtifacts();
      return copy.call(svc, id);
    };
    const { record } = await runJob(svc, 1, addressOf(VICTIM_KEY), [], clock.now);
    expect(record.status).toBe('proving');
    expect(record.outputs?.[0]?.artifactId).toBe(idOf(known));
    expect(svc.artifacts.has(idOf(known))).toBe(true);
    svc.stop();
  });
});
