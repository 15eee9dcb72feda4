import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { childProcessRuntime } from '../../packages/enclave/src/runtime/mlRuntime.ts';

// Attack (malicious host, or a spare that stopped answering): the runtime keeps a spare ML child
// started ahead of the next job and, before handing it over, pings it without any time limit;
// the job's deadline only starts once a child is in hand. A spare that is alive but does not
// answer (frozen: SIGSTOP, swapped out, stuck) holds the job forever, past its deadline.
// Promise: a hanging child fails only its job (by the job's deadline) and the next job works.
const entry = {
  modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
  execArgv: ['--import', 'tsx'],
};
const pids: number[] = [];
const runtimes: { close(): void }[] = [];
const kill = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {}
};
afterAll(() => {
  for (const r of runtimes) r.close();
  for (const p of pids) {
    kill(p, 'SIGCONT');
    kill(p, 'SIGKILL');
  }
});

const job = (runtime: ReturnType<typeof childProcessRuntime>, timeoutMs: number) =>
  runtime.runWorkload(
    'probe',
    { params: {}, inputs: [], progress: () => undefined, now: () => 1_750_000_000 },
    { timeoutMs },
  );

describe('attack: a frozen spare ML child', () => {
  it('a job given a frozen spare ends by its deadline, and the next job runs', async () => {
    const runtime = childProcessRuntime({ ...entry, spare: true, onSpawn: (pid) => pids.push(pid) });
    runtimes.push(runtime);
    await runtime.spareReady();
    const spare = pids[0]!;
    kill(spare, 'SIGSTOP');

    const t0 = Date.now();
    const outcome = await Promise.race([
      job(runtime, 3_000).then(
        () => 'ran',
        (e: { code?: string }) => `failed ${e.code}`,
      ),
      new Promise<string>((r) => setTimeout(() => r('still waiting'), 30_000)),
    ]);
    // Either it ran in a fresh child or it failed at its deadline; it must not hang.
    expect(outcome).not.toBe('still waiting');
    expect(Date.now() - t0).toBeLessThan(30_000);
    runtime.jobFinished?.();

    const next = await job(runtime, 60_000);
    expect(next.outputs).toHaveLength(1);
  }, 120_000);
});
