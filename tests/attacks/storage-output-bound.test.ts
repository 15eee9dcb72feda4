import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FirnJob, JobStatus } from '@firn/chain';
import { computeInputCommitment, type Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import {
  addressOfKey,
  artifactIdOf,
  runStorageJob,
  storageService,
  uploadAs,
} from '../helpers/storageService.ts';

// Attack (requester): a job's outputs can exceed the one block a node reserved before its claim
// (decision 1675), so a node claimed (bonded) and ran a job whose outputs it then could not store,
// and POST /v1/jobs answered 202 for a job that could only fail E_QUOTA_EXCEEDED later.
// Safe outcome (decision 1690): a job declares its output bound; the node refuses on the request
// (413) when its quotas cannot hold it, reserves it before the claim (no chain write when it does
// not fit), and a job that emits more than it declared fails (E_TOO_LARGE) with nothing of its
// outputs stored, its inputs intact and the job failed on chain (the requester reclaims the escrow).
const dir = mkdtempSync(join(tmpdir(), 'firn-output-bound-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Count the node's chain writes (claim, failJob) and enclave calls from here on. */
function watch(svc: JobService) {
  const seen = { chainWrites: 0, enclave: [] as string[] };
  const s = svc as unknown as Record<string, unknown>;
  const chain = s.chain as (f: () => Promise<unknown>) => Promise<unknown>;
  s.chain = async (f: () => Promise<unknown>) => {
    seen.chainWrites++;
    return chain(f);
  };
  const sup = (
    svc as unknown as { node: { supervisor: { call: (m: string, a: unknown) => Promise<unknown> } } }
  ).node.supervisor;
  const call = sup.call.bind(sup);
  sup.call = async (m: string, a: unknown) => {
    if (m !== 'setChainTime') seen.enclave.push(m);
    return call(m, a);
  };
  return seen;
}

/** POST /v1/jobs through JobService.submit for `requester`'s Open job naming `inputs`. */
async function post(svc: JobService, requester: string, inputs: Hex[], now: number, maxOutputBytes?: number) {
  const jobId = `0x${'77'.repeat(32)}` as Hex;
  const job = {
    status: JobStatus.Open,
    requester,
    escrow: 10n ** 30n,
    claimTimeout: 86_400n,
    deadline: BigInt(now + 86_400 * 2),
    teeTypeMask: 0xff,
    allowedMeasurements: [],
    inputCommitment: computeInputCommitment(inputs),
    workloadHash: `0x${'00'.repeat(32)}`,
  } as unknown as FirnJob;
  // The requester's signature and the chain read are checked elsewhere (node-api-access tests).
  (svc as unknown as Record<string, unknown>).authorizeSubmission = async () => job;
  let status = 0;
  const res = {
    writeHead: (s: number) => {
      status = s;
    },
    end: () => undefined,
  } as unknown as ServerResponse;
  const body = {
    jobId,
    enc: `0x${'01'.repeat(32)}`,
    ciphertext: 'AAAA',
    inputs,
    ...(maxOutputBytes === undefined ? {} : { maxOutputBytes }),
  };
  try {
    await svc.submit({ headers: {} } as IncomingMessage, res, body);
    return { status, jobId };
  } catch (e) {
    return {
      status: 0,
      jobId,
      error: e as { code: string; message: string; details?: Record<string, unknown> },
    };
  }
}

describe("a job's declared output bound on the node", () => {
  it("POST /v1/jobs declaring more than the requester's free quota is refused on the request (413), nothing recorded", async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'own'), clock, { perAddressBytes: 16 * K, totalBytes: 1024 * K });
    const key = `0x${'0a'.repeat(32)}` as Hex;
    const input = new Uint8Array(4 * K).fill(1);
    expect((await uploadAs(svc, key, input, clock)).status).toBe(201);
    const seen = watch(svc);
    // 4 blocks stored, 16 allowed: a job declaring 13 blocks does not fit.
    const r = await post(svc, addressOfKey(key), [artifactIdOf(input)], clock.now, 13 * K);
    expect(r.error?.code).toBe('E_QUOTA_EXCEEDED');
    expect(r.error?.details).toMatchObject({
      quota: 'perAddressBytes',
      used: 4 * K,
      size: 13 * K,
      limit: 16 * K,
    });
    expect(r.error?.message).toContain('maxOutputBytes');
    expect(svc.jobs.get(r.jobId)).toBeUndefined();
    expect(seen).toEqual({ chainWrites: 0, enclave: [] });
    // One that fits (12 blocks) is accepted.
    expect((await post(svc, addressOfKey(key), [artifactIdOf(input)], clock.now, 12 * K)).status).toBe(202);
    await svc.drain(10_000);
  }, 30_000);

  it("POST /v1/jobs declaring more than the node's free total is refused on the request, naming the total", async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'total'), clock, { perAddressBytes: 16 * K, totalBytes: 40 * K });
    // Two sybils fill 32 of 40 blocks; the requester's input takes 1 more.
    for (const k of [1, 2])
      expect(
        (
          await uploadAs(
            svc,
            `0x${String(k).padStart(2, '0').repeat(32)}` as Hex,
            new Uint8Array(16 * K).fill(k),
            clock,
          )
        ).status,
      ).toBe(201);
    const key = `0x${'0b'.repeat(32)}` as Hex;
    const input = new Uint8Array(K).fill(3);
    expect((await uploadAs(svc, key, input, clock)).status).toBe(201);
    const r = await post(svc, addressOfKey(key), [artifactIdOf(input)], clock.now, 8 * K);
    expect(r.error?.code).toBe('E_QUOTA_EXCEEDED');
    expect(r.error?.details).toMatchObject({ quota: 'totalBytes', used: 33 * K, size: 8 * K, limit: 40 * K });
    expect(svc.jobs.get(r.jobId)).toBeUndefined();
    svc.stop();
  }, 30_000);

  it('a job declaring more than the free quota when its slot comes is refused before the claim (no chain write, no enclave call)', async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'race'), clock, { perAddressBytes: 16 * K, totalBytes: 1024 * K });
    const seen = watch(svc);
    const { record } = await runStorageJob(svc, 1, `0x${'cd'.repeat(20)}`, [], clock.now, 17 * K);
    expect(record.status).toBe('failed');
    expect(record.error?.code).toBe('E_QUOTA_EXCEEDED');
    expect(seen).toEqual({ chainWrites: 0, enclave: [] });
    svc.stop();
  }, 30_000);

  it('a job emitting more than it declared fails E_TOO_LARGE: no output stored or charged, inputs intact, failed on chain', async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'emit'), clock, { perAddressBytes: 16 * K, totalBytes: 1024 * K });
    const key = `0x${'0c'.repeat(32)}` as Hex;
    const input = new Uint8Array(K).fill(4);
    expect((await uploadAs(svc, key, input, clock)).status).toBe(201);
    const requester = addressOfKey(key);
    const seen = watch(svc);
    // The (stubbed) enclave writes 3 blocks; the job declared 2. The real enclave refuses to write
    // them (packages/enclave/src/jobs/outputBound.test.ts); the node does not store them either.
    const { record } = await runStorageJob(svc, 2, requester, [artifactIdOf(input)], clock.now, 2 * K);
    expect(record.error?.code).toBe('E_TOO_LARGE');
    // Claimed, run, then failed on chain while the claim holds: the escrow goes back to the requester.
    expect(seen.chainWrites).toBe(2);
    expect(seen.enclave).toEqual(['preflightJob', 'runJob']);
    expect(svc.quota.usedBy(requester)).toBe(K);
    expect(svc.quota.total).toBe(K);
    expect(svc.artifacts.has(artifactIdOf(input))).toBe(true);
    // Nothing of the reservation is left behind: the requester can use its whole quota again.
    expect((await uploadAs(svc, key, new Uint8Array(15 * K).fill(5), clock)).status).toBe(201);
    svc.stop();
  }, 30_000);

  it('a job within its bound is charged what it stored and the rest of the reservation is released', async () => {
    const clock = { now: 1_800_000_000 };
    const svc = storageService(join(dir, 'fits'), clock, { perAddressBytes: 16 * K, totalBytes: 1024 * K });
    const requester = `0x${'ce'.repeat(20)}`;
    const { record } = await runStorageJob(svc, 3, requester, [], clock.now, 12 * K);
    expect(record.status).toBe('proving');
    expect(svc.quota.usedBy(requester)).toBe(3 * K);
    // 13 blocks left of 16: a second job declaring 13 fits, one declaring 14 does not.
    expect(() => svc.quota.check(requester, 14 * K)).toThrow(/storage quota/);
    expect(svc.quota.check(requester, 13 * K)).toBe(13 * K);
    svc.stop();
  }, 30_000);
});
