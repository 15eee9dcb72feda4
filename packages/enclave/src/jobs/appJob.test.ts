import { readdirSync } from 'node:fs';
import type { Workload } from '@firn/app';
import { sha256 } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createAppProgram, oneOutput as out } from '../../test/appProgram.ts';
import { inProcessRuntime } from '../runtime/mlRuntime.ts';
import { createJobHandlers } from './index.ts';
import { FIRST_PARTY_SERVED, WORKLOADS } from './workloads/index.ts';

// In process: what the enclave process enforces on an app's signData calls, whatever the app
// (or a compromised runtime child) asks for.
const NOW = 1_750_000_000;
// Lowered limits, so the caps are reached with small outputs and short waits.
const LIMITS = { maxWorkloadMs: 400, maxOutputBytes: 1024, maxTotalOutputBytes: 1536 };
const workloads: Record<string, Workload> = {
  // A workload that never finishes (a deadlock, an await on nothing).
  hang: () => new Promise(() => undefined),
  async giant() {
    return out(new Uint8Array(LIMITS.maxOutputBytes + 1));
  },
  async twobig() {
    const half = new Uint8Array(LIMITS.maxOutputBytes);
    return {
      outputs: [
        { role: 'a', contentType: 'application/octet-stream', bytes: half },
        { role: 'b', contentType: 'application/octet-stream', bytes: half },
      ],
      workUnits: 1n,
    };
  },
  async greedy(ctx) {
    for (let i = 0; i < 17; i++) await ctx.signData(sha256(new Uint8Array([i])), { topic: `n${i}` });
    return out(new Uint8Array(1));
  },
  async short(ctx) {
    await ctx.signData(new Uint8Array(31), { topic: 'digest' });
    return out(new Uint8Array(1));
  },
  async smuggle(ctx) {
    // A result that carries its own "records": only records the enclave process signed count.
    const fake = { ...(await ctx.signData(sha256(ctx.input('data')), { topic: 'real' })), topic: 'fake' };
    return { ...out(new Uint8Array(1)), signedData: [fake, fake] } as unknown as ReturnType<Workload>;
  },
};
const { dir, run: runApp } = await createAppProgram({ workloads, now: NOW, limits: LIMITS });
const run = (kind: string, extra: { deadline?: number } = {}) => runApp(kind, { extra });

describe('limits on a workload', () => {
  it('a workload that never finishes fails with E_TIMEOUT at the enclave cap', async () => {
    const t0 = Date.now();
    await expect(run('hang')).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
  it("a workload that never finishes fails with E_TIMEOUT at the job's deadline (before the cap)", async () => {
    // The deadline has passed (enclave time NOW): the run is stopped at once, not after the cap.
    await expect(run('hang', { deadline: NOW - 1 })).rejects.toMatchObject({ code: 'E_TIMEOUT' });
  });
  it('an output over the per-output cap fails the job with E_TOO_LARGE and writes nothing', async () => {
    const before = readdirSync(dir).length;
    await expect(run('giant')).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    // Only the sealed input of this run was added; no output reached the host's disk.
    expect(readdirSync(dir).length).toBe(before + 1);
  });
  it('outputs each under the cap but over the total cap fail with E_TOO_LARGE', async () => {
    await expect(run('twobig')).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });
});

describe('signData in the enclave process', () => {
  it('signs at most 16 records per job (E_TOO_LARGE for the 17th)', async () => {
    await expect(run('greedy')).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });
  it('refuses a digest that is not 32 bytes (E_INVALID_INPUT)', async () => {
    await expect(run('short')).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });
  it('returns only the records it signed itself, never ones a workload puts in its result', async () => {
    const r = await run('smuggle');
    expect(r.signedData).toHaveLength(1);
    expect(r.signedData[0]!.topic).toBe('real');
  });
});

describe('warm inference sessions', () => {
  it('are refused (E_UNSUPPORTED) by an image whose app has no inference workload, served by one that has', async () => {
    const appHandlers = createJobHandlers(inProcessRuntime(workloads), workloads);
    const ctx = undefined as never;
    for (const m of ['preflightSession', 'openSession', 'sessionRequest', 'closeSession'])
      await expect(appHandlers[m]!({}, ctx)).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    const firstParty = createJobHandlers(inProcessRuntime(WORKLOADS), WORKLOADS, {
      served: FIRST_PARTY_SERVED,
    });
    // The first-party image gets as far as checking the request (which this empty one fails).
    await expect(firstParty.openSession!({}, ctx)).rejects.not.toMatchObject({ code: 'E_UNSUPPORTED' });
  });
});
