import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildJobRequest, jobCommitments, openOutput, sealInput } from '@firn/client';
import { bytesToHex, FirnError, type Hex, repoRoot, sha256, sharedPath } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { createSimulatedProvider } from '../evidence/simulated.ts';
import { createJobHandlers } from '../jobs/index.ts';
import type { RunJobResult } from '../jobs/runJob.ts';
import {
  childProcessRuntime,
  type ChildProcessRuntimeOptions,
  inProcessRuntime,
  TRAINING_CHILD_V8_FLAGS,
} from './mlRuntime.ts';
import { WORKLOADS } from '../jobs/workloads/index.ts';

// The spare ML child (docs/decisions/1280-spare-ml-child.md), driven through the runtime's own
// API with the test worker entry (TypeScript sources via tsx). Each test attacks one promise:
// a spare serves one job only, carries nothing from an earlier job, gets no environment, is
// checked like any child before it is forked, and a dead spare never fails a job.
const entry: Pick<ChildProcessRuntimeOptions, 'modulePath' | 'execArgv'> = {
  modulePath: join(repoRoot(), 'packages', 'enclave', 'src', 'runtime', 'testWorkerEntry.ts'),
  execArgv: ['--import', 'tsx'],
};
const pids: number[] = [];
const runtimes: { close(): void }[] = [];
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Wait (at most 10 s, the machine may be loaded) until `pid` has exited and been reaped. */
async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  expect(alive(pid)).toBe(false);
}
afterAll(() => {
  for (const r of runtimes) r.close();
  for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
});

function spareRuntime(extra: Partial<ChildProcessRuntimeOptions> = {}) {
  const spawned: number[] = [];
  const runtime = childProcessRuntime({
    ...entry,
    spare: true,
    ...extra,
    onSpawn: (pid) => {
      pids.push(pid);
      spawned.push(pid);
    },
  });
  runtimes.push(runtime);
  return { runtime, spawned };
}

const decode = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;

/** Run a workload of the test entry as a job would, then let the runtime start its next spare. */
async function run(
  runtime: ReturnType<typeof childProcessRuntime>,
  kind: string,
  params: Record<string, unknown> = {},
) {
  try {
    const r = await runtime.runWorkload(kind, {
      params,
      inputs: [],
      progress: () => undefined,
      now: () => 1_750_000_000,
    });
    return decode(r.outputs[0]!.bytes);
  } finally {
    runtime.jobFinished?.();
  }
}

describe('spare ML child', () => {
  it('is started and warmed before the first job, which runs in it; it is never used again', async () => {
    const { runtime, spawned } = spareRuntime();
    await runtime.spareReady();
    expect(spawned).toHaveLength(1);
    const spare = spawned[0]!;
    const first = await run(runtime, 'probe');
    // The job ran in the child started ahead of it, which ended with the job.
    expect(first.pid).toBe(spare);
    await gone(spare);
    // The next spare is a new process; the second job runs there, not in the first one.
    await runtime.spareReady();
    expect(spawned).toHaveLength(2);
    const second = await run(runtime, 'probe');
    expect(second.pid).toBe(spawned[1]);
    expect(second.pid).not.toBe(first.pid);
  }, 120_000);

  it("a job never sees what an earlier job left in its child's memory", async () => {
    const { runtime } = spareRuntime();
    const secret = `requester-data-${Math.random()}`;
    const a = await run(runtime, 'memory', { mode: 'set', value: secret });
    expect(a.seen).toBe(secret);
    await runtime.spareReady();
    const b = await run(runtime, 'memory', { mode: 'get' });
    expect(b.pid).not.toBe(a.pid);
    expect(b.seen).toBeNull();
  }, 120_000);

  it('gets no environment, even a FIRN variable set in the parent when it was forked', async () => {
    process.env.FIRN_SPARE_PROBE = 'parent-only';
    try {
      const { runtime } = spareRuntime();
      await runtime.spareReady();
      const seen = await run(runtime, 'probe');
      expect((seen.env as string[]).filter((k) => k.startsWith('FIRN'))).toEqual([]);
      expect(seen.argv).toEqual([]);
    } finally {
      delete process.env.FIRN_SPARE_PROBE;
    }
  }, 120_000);

  it('prepareJob takes the spare ahead of the run, which runs in it; a job that ends before its run stops the taken child, which never serves another job', async () => {
    const { runtime, spawned } = spareRuntime();
    await runtime.spareReady();
    const spare = spawned[0]!;
    runtime.prepareJob?.('probe');
    const first = await run(runtime, 'probe');
    expect(first.pid).toBe(spare);
    await gone(spare);
    // Taken for a job that then failed its checks: stopped at jobFinished, no input ever sent.
    await runtime.spareReady();
    const taken = spawned[1]!;
    runtime.prepareJob?.('probe');
    runtime.jobFinished?.();
    await gone(taken);
    await runtime.spareReady();
    const next = await run(runtime, 'probe');
    expect(next.pid).not.toBe(taken);
    expect(next.pid).toBe(spawned[2]);
    // Taken for one kind, run as another: the taken child is stopped; the run gets its own child.
    await runtime.spareReady();
    const other = spawned[3]!;
    runtime.prepareJob?.('memory');
    const r = await run(runtime, 'probe');
    expect(r.pid).not.toBe(other);
    await gone(other);
  }, 120_000);

  it('a spare killed while idle is replaced by a fresh child: the job still runs', async () => {
    const { runtime, spawned } = spareRuntime();
    await runtime.spareReady();
    const spare = spawned[0]!;
    process.kill(spare, 'SIGKILL');
    // No wait: the job may come before the parent has even seen the spare's exit.
    const r = await run(runtime, 'probe');
    expect(r.pid).not.toBe(spare);
    expect(spawned).toContain(r.pid as number);
  }, 120_000);

  it('is checked before its fork and again once its engines are loaded; a change found then drops it and jobs fail typed', async () => {
    let checks = 0;
    let refuseFrom = Number.POSITIVE_INFINITY;
    const mapped: string[] = [];
    const { runtime, spawned } = spareRuntime({
      beforeSpawn: () => {
        checks++;
        // The second check is the spare's, after it loaded its engines: onnxruntime's native
        // binding and shared library are mapped into it by then (nothing is left to load later).
        if (checks === 2 && spawned[0] !== undefined)
          mapped.push(readFileSync(`/proc/${spawned[0]}/maps`, 'utf8'));
        if (checks >= refuseFrom) throw new FirnError('E_IMAGE_MISMATCH', 'the enclave image changed');
      },
    });
    // The image changes while the spare loads its engines: the check after the load refuses it.
    refuseFrom = 2;
    await runtime.spareReady();
    expect(checks).toBe(2);
    expect(mapped[0]).toMatch(/onnxruntime_binding\.node/);
    expect(mapped[0]).toMatch(/libonnxruntime\.so/);
    await gone(spawned[0]!);
    // The dropped spare is never handed a job: the job starts its own child, whose check refuses it.
    await expect(run(runtime, 'probe')).rejects.toMatchObject({ code: 'E_IMAGE_MISMATCH' });
    await runtime.spareReady();
    await expect(run(runtime, 'probe')).rejects.toMatchObject({ code: 'E_IMAGE_MISMATCH' });
    // Checks: the spare's fork, its post-load check, the job's own child, the spare after it
    // (refused before its fork), the second job's own child, the spare after that.
    expect(checks).toBe(6);
    expect(spawned).toHaveLength(1);
  }, 120_000);

  it('a change after the post-load check never reaches the checked spare, and refuses every later child', async () => {
    let checks = 0;
    let refuse = false;
    const { runtime, spawned } = spareRuntime({
      beforeSpawn: () => {
        checks++;
        if (refuse) throw new FirnError('E_IMAGE_MISMATCH', 'the enclave image changed');
      },
    });
    await runtime.spareReady();
    expect(checks).toBe(2);
    // The spare holds every runtime file it will run, checked after loading: the hand-over needs
    // no check, and the job runs in it.
    refuse = true;
    const r = await run(runtime, 'probe');
    expect(r.pid).toBe(spawned[0]);
    // The only check since is the next spare's, before its fork (run() ends with jobFinished): refused.
    expect(checks).toBe(3);
    await runtime.spareReady();
    expect(spawned).toHaveLength(1);
    // So is the next job's own child.
    await expect(run(runtime, 'probe')).rejects.toMatchObject({ code: 'E_IMAGE_MISMATCH' });
    expect(checks).toBe(5);
  }, 120_000);

  it('a job that arrives while the spare warms takes it once checked and cuts the warm-up short', async () => {
    const { runtime, spawned } = spareRuntime();
    const afterTraining = async () => {
      // A training job (here one refused for want of a dataset) makes the next spare warm training.
      await expect(run(runtime, 'training', { task: 'classification' })).rejects.toMatchObject({
        code: 'E_JOB_INVALID',
      });
    };
    // Waited for: the spare finished its training warm-up before the job.
    await runtime.spareReady();
    await afterTraining();
    await runtime.spareReady();
    const warmed = await run(runtime, 'probe');
    // Back to back: the job comes while its spare is still loading or warming.
    await afterTraining();
    const cut = await run(runtime, 'probe');
    expect(cut.pid).toBe(spawned.at(-2));
    // The warm-up (~10k synthetic training samples, half a CPU-second or more) was stopped before
    // it ran its course: the job's child had used far less CPU when the job started.
    expect(cut.cpuMs as number).toBeLessThan((warmed.cpuMs as number) - 150);
  }, 120_000);

  it('close() stops the spare and starts no more; later jobs start their own child', async () => {
    const { runtime, spawned } = spareRuntime();
    await runtime.spareReady();
    runtime.close();
    await gone(spawned[0]!);
    const r = await run(runtime, 'probe');
    expect(r.pid).toBe(spawned[1]);
    await runtime.spareReady();
    expect(spawned).toHaveLength(2);
  }, 120_000);

  /** The Node options a child was started with (its command line before the module path; Linux /proc). */
  const nodeFlags = (pid: number) => {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.slice(
      1,
      argv.findIndex((a) => a.endsWith('testWorkerEntry.ts')),
    );
  };
  // docs/decisions/1440: children that train get V8 heap and wasm tiering flags; no other child does.
  it('a spare started after a training job gets the training V8 flags; other children get none', async () => {
    const { runtime, spawned } = spareRuntime();
    await runtime.spareReady();
    // No job yet: a plain child.
    const plain = nodeFlags(spawned[0]!);
    expect(plain).toEqual(['--import', 'tsx']);
    // A training job (it fails on its missing dataset; the kind is what counts) leaves a training spare.
    await expect(run(runtime, 'training', { task: 'classification' })).rejects.toThrow(/dataset/);
    await runtime.spareReady();
    expect(spawned).toHaveLength(2);
    expect(nodeFlags(spawned[1]!)).toEqual([...TRAINING_CHILD_V8_FLAGS, '--import', 'tsx']);
    expect(nodeFlags(spawned[1]!)).not.toEqual(plain);
    // An inference-kind job takes it; the spare after that is plain again.
    await run(runtime, 'probe');
    await runtime.spareReady();
    expect(spawned).toHaveLength(3);
    expect(nodeFlags(spawned[2]!)).toEqual(['--import', 'tsx']);
  }, 120_000);

  it('a training job started in its own child gets the flags, and trains the same weights as this process', async () => {
    const csv = new Uint8Array(readFileSync(sharedPath('datasets', 'iris.csv')));
    const flagged: number[] = [];
    const seenFlags: string[][] = [];
    const ctx = {
      params: { task: 'classification', epochs: 3, hidden: [16], seed: 5, validationSplit: 0.2 },
      inputs: [
        { role: 'dataset', artifactId: `0x${'22'.repeat(32)}` as Hex, contentType: 'text/csv', bytes: csv },
      ],
      // Read while the child trains (it has started its module by then).
      progress: () => {
        if (seenFlags.length === 0 && flagged[0] !== undefined) seenFlags.push(nodeFlags(flagged[0]));
      },
      now: () => 1_750_000_000,
    };
    // No spare: the job's child is forked for it, as a training child.
    const child = childProcessRuntime({ ...entry, onSpawn: (pid) => flagged.push(pid) });
    runtimes.push(child);
    const inChild = await child.runWorkload('training', ctx);
    pids.push(...flagged);
    expect(seenFlags[0]).toEqual([...TRAINING_CHILD_V8_FLAGS, '--import', 'tsx']);
    const here = await inProcessRuntime(WORKLOADS).runWorkload('training', ctx);
    const weights = (r: typeof here) => Buffer.from(r.outputs.find((o) => o.role === 'weights')!.bytes);
    expect(weights(inChild).equals(weights(here))).toBe(true);
    // The model is not trivial: the weights hold more than their header.
    expect(weights(here).length).toBeGreaterThan(400);
  }, 120_000);

  it('through the job handlers: each runJob runs in its own child, and the next spare starts only after the answer', async () => {
    const { runtime, spawned } = spareRuntime();
    const NOW = 1_750_000_000;
    const dir = mkdtempSync(join(tmpdir(), 'firn-spare-'));
    const platform = await createSimulatedPlatform(await createSimulatedRoot());
    const m = sha256(new Uint8Array([5]));
    const program = createEnclaveProgram(
      {
        provider: createSimulatedProvider(platform, m),
        measurementRegisters: [m],
        platformId: Uint8Array.from(Buffer.from(platform.platformId.slice(2), 'hex')),
      },
      createJobHandlers(runtime, undefined, {
        now: () => NOW,
        served: { workloads: ['memory'], firstParty: true },
      }),
    );
    const identity = (await program.handle('init', {})) as { enclaveId: Hex; kemPublicKey: Hex };
    const kem = await generateKemKeyPair();
    const domain = { chainId: 31337, jobMarket: `0x${'00'.repeat(19)}aa` as Hex };
    let n = 0;
    const job = async (params: Record<string, unknown>) => {
      const s = await sealInput(new TextEncoder().encode('x'), 'text/plain', kem.publicKey);
      writeFileSync(join(dir, s.artifactId.slice(2)), s.sealed);
      const inputs = [{ role: 'data', artifactId: s.artifactId, dataKey: s.dataKey }];
      const jobId = bytesToHex(sha256(new Uint8Array([++n, 91])));
      const built = await buildJobRequest({
        jobId,
        kind: 'memory' as 'training',
        inputs,
        params,
        requesterKey: bytesToHex(generateSigningKey().privateKey),
        enclave: identity,
        resultRecipient: kem.publicKey,
        domain,
        grantExpiresAt: NOW + 600,
        grantIssuedAt: NOW - 60,
      });
      const r = (await program.handle('runJob', {
        jobId,
        enc: built.body.enc,
        request: built.body.ciphertext,
        inputPaths: { [s.artifactId]: join(dir, s.artifactId.slice(2)) },
        onChain: jobCommitments('memory' as 'training', params, inputs),
        domain,
        outputDir: dir,
      })) as RunJobResult;
      // The answer is out and no new child was forked before it.
      const atAnswer = spawned.length;
      const out = await openOutput(new Uint8Array(readFileSync(r.outputs[0]!.path)), kem.privateKey);
      return { seen: decode(out.bytes), atAnswer };
    };
    await runtime.spareReady();
    const a = await job({ mode: 'set', value: 'first job' });
    expect(a.seen.pid).toBe(spawned[0]);
    expect(a.atAnswer).toBe(1);
    await runtime.spareReady();
    expect(spawned).toHaveLength(2);
    const b = await job({ mode: 'get' });
    expect(b.seen.pid).toBe(spawned[1]);
    expect(b.seen.seen).toBeNull();
    expect(b.atAnswer).toBe(2);
  }, 120_000);
});
