import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { JobFailedError, type RunJobOptions, runJob } from '@firn/client';
import { expect } from 'vitest';
import type { TestNetwork } from '../e2e/network.ts';

/**
 * Runs the job and asserts it fails cleanly: `runJob` rejects with a JobFailedError of `code`,
 * the SDK reclaimed the escrow, and the job reads Reclaimed on chain. Returns that error (its
 * `jobId`, `message`) for further checks.
 */
export async function expectJobFailure(
  net: TestNetwork,
  opts: RunJobOptions,
  code: string,
): Promise<JobFailedError> {
  let err: unknown;
  try {
    await runJob(opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(JobFailedError);
  const f = err as JobFailedError;
  expect(f.code).toBe(code);
  expect(f.reclaimed).toBe(true);
  const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
  expect((await getJob(clients, f.jobId)).status).toBe(JobStatus.Reclaimed);
  return f;
}
