import type { Workload } from '@firn/app';
import { describe, expect, it } from 'vitest';
import { createAppProgram } from '../../packages/enclave/test/appProgram.ts';
import { training } from '../../packages/enclave/src/jobs/workloads/training.ts';

// Decision 1595 promises that the enclave signs a JobFailure ("the requester's workload failed";
// failJobAttested returns the whole claim bond) only for a failure that is a function of the
// committed workload and inputs, never for a memory failure the host causes. A malicious host
// starves its enclave of memory (the VM's or the cgroup's size is the host's) while the training
// workload parses a quoted CSV dataset: csv-parse copies the text into a Buffer of its size, the
// allocation fails with Node's "RangeError: Array buffer allocation failed", and the CSV parser's
// catch-all turns that into E_DATA_INVALID, which the enclave signs as the requester's data error.
// The host then fails the job late at no cost (1571's griefing, through memory it controls).
const NOW = 1_750_000_000;

/** A quoted CSV (so the general parser runs, not the plain-table fast path): valid training data. */
function quotedDataset(rows: number): Uint8Array {
  const lines = ['"a","b","y"'];
  for (let i = 0; i < rows; i++) lines.push(`"${(i % 7) / 7}","${(i % 5) / 5}","${i % 2 === 0 ? 'x' : 'z'}"`);
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}

/** What the host's memory starvation looks like to JS: big ArrayBuffer allocations fail. */
function starveBigAllocations<T>(minBytes: number, f: () => Promise<T>): Promise<T> {
  const from = Buffer.from;
  (Buffer as unknown as { from: unknown }).from = function (this: unknown, ...args: unknown[]) {
    if (typeof args[0] === 'string' && args[0].length >= minBytes)
      throw new RangeError('Array buffer allocation failed');
    return (from as (...a: unknown[]) => Buffer).apply(Buffer, args);
  };
  return f().finally(() => {
    (Buffer as unknown as { from: unknown }).from = from;
  });
}

const dataset = quotedDataset(8_000);
const params = { task: 'classification', target: 'y', epochs: 1 };
const workloads: Record<string, Workload> = {
  // The first-party training workload on the requester's (valid) dataset, the host's memory
  // starved while it runs.
  async 'training-starved'(ctx) {
    const inputs = [
      { role: 'dataset', artifactId: ctx.inputs[0]!.artifactId, contentType: 'text/csv', bytes: dataset },
    ];
    return starveBigAllocations(64 * 1024, () => training({ ...ctx, params, inputs }));
  },
  // The same dataset with memory to spare trains: the data is not at fault.
  async 'training-fed'(ctx) {
    const inputs = [
      { role: 'dataset', artifactId: ctx.inputs[0]!.artifactId, contentType: 'text/csv', bytes: dataset },
    ];
    return training({ ...ctx, params, inputs });
  },
};

const events: { event: string; data: unknown }[] = [];
const app = await createAppProgram({
  workloads,
  now: NOW,
  limits: { maxWorkloadMs: 60_000, maxOutputBytes: 8 << 20, maxTotalOutputBytes: 16 << 20 },
  prefix: 'firn-starved-',
  emit: (event, data) => events.push({ event, data }),
});
const signed = () => events.filter((e) => e.event === 'jobFailure').length;

describe('a host that starves the enclave of memory gets no attested failure', () => {
  it('the valid dataset trains when memory is there', async () => {
    const r = await app.run('training-fed');
    expect(r).toBeDefined();
  }, 60_000);

  it('an allocation failure while parsing the CSV is not signed as the requester’s data error', async () => {
    const before = signed();
    const err = (await app.run('training-starved').catch((e: unknown) => e)) as { code?: string };
    // A resource failure: untyped (E_JOB_FAILED), never E_DATA_INVALID, and never signed.
    expect(err.code).not.toBe('E_DATA_INVALID');
    expect(signed() - before).toBe(0);
  }, 60_000);
});
