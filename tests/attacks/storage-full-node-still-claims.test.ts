import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import { addressOfKey, runStorageJob, storageService, uploadAs } from '../helpers/storageService.ts';

// Attack (requester, sybil uploaders): the per-address quota bounds one address, not a requester
// with many. A few throw-away keys upload junk until the node's total quota is full (kept for the
// upload retention, 24 h by default; renewed by uploading more). From then on every job this node
// takes is claimed on chain (the node posts its claim bond), run in the enclave to the end, and
// only then fails E_QUOTA_EXCEEDED when its outputs are stored: the node pays the claim and the
// failJob transactions, forfeits the share of its bond the run took, the compute is wasted, and
// the honest requester's job fails after a full run instead of being refused at once.
// Safe outcome: a node that cannot store even one output block refuses the job before it claims it
// (no chain write, no enclave run), as it does for any other pre-flight failure.
const dir = mkdtempSync(join(tmpdir(), 'firn-full-node-claims-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a node whose total storage quota is full', () => {
  it('does not claim (bond) and run a job whose outputs it cannot store', async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'node'), clock, { perAddressBytes: 16 * K, totalBytes: 64 * K });
    // Four sybil uploaders fill the node's total (16 blocks each, 64 in all).
    for (let k = 1; k <= 4; k++) {
      const key = `0x${String(k).padStart(2, '0').repeat(32)}` as Hex;
      const r = await uploadAs(svc, key, new Uint8Array(16 * K).fill(k), clock);
      expect(r.status).toBe(201);
    }
    expect(svc.quota.total).toBe(64 * K);
    // Count the node's chain writes (claimJob, failJob) and enclave runs from here on.
    let chainWrites = 0;
    const s = svc as unknown as Record<string, unknown>;
    const chain = s.chain as (f: () => Promise<unknown>) => Promise<unknown>;
    s.chain = async (f: () => Promise<unknown>) => {
      chainWrites++;
      return chain(f);
    };
    let runs = 0;
    const sup = (
      svc as unknown as { node: { supervisor: { call: (m: string, a: unknown) => Promise<unknown> } } }
    ).node.supervisor;
    const call = sup.call.bind(sup);
    sup.call = async (m: string, a: unknown) => {
      if (m === 'runJob') runs++;
      return call(m, a);
    };
    const honest = `0x${'cd'.repeat(20)}`;
    const { record } = await runStorageJob(svc, 1, honest, [], clock.now);
    expect(record.status).toBe('failed');
    expect(record.error?.code).toBe('E_QUOTA_EXCEEDED');
    // The attack works when the node claimed (bond posted), ran the job and failed it on chain.
    expect({ chainWrites, runs }).toEqual({ chainWrites: 0, runs: 0 });
    svc.stop();
  }, 30_000);

  it('does not claim and run a job of a requester whose own quota is full (no sybils needed)', async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'own'), clock, { perAddressBytes: 16 * K, totalBytes: 1024 * K });
    // The requester fills its own per-address quota with one upload, then posts jobs to this node.
    const key = `0x${'0e'.repeat(32)}` as Hex;
    expect((await uploadAs(svc, key, new Uint8Array(16 * K).fill(9), clock)).status).toBe(201);
    let chainWrites = 0;
    const s = svc as unknown as Record<string, unknown>;
    const chain = s.chain as (f: () => Promise<unknown>) => Promise<unknown>;
    s.chain = async (f: () => Promise<unknown>) => {
      chainWrites++;
      return chain(f);
    };
    const { record } = await runStorageJob(svc, 2, addressOfKey(key), [], clock.now);
    expect(record.error?.code).toBe('E_QUOTA_EXCEEDED');
    // Each such job costs the node a claim, a full run and a failJob (bond share forfeited).
    expect(chainWrites).toBe(0);
    svc.stop();
  }, 30_000);
});
