/**
 * The scale benchmark's own code (bench/scale.ts), run small so it cannot rot: a devnet of 2
 * nodes and 10 jobs in two phases (4, then 6) through the same runScale the benchmark runs, every
 * job checked, proved, finalized and paid, gas and memory measured, and every process it started
 * gone afterwards. Beside it, the checks the benchmark's figures rest on: a wrong output is never
 * counted as done, and the limit named follows the measured load.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Devnet } from '../../packages/cli/src/devnet/startDevnet.ts';
import { dist, type LoadSummary, limitOf, outputDiff, runScale, scaleHeadlines } from '../../bench/scale.ts';
import { ratioLine } from '../../bench/report.ts';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
};

/** Pids of `pid`'s direct children (Linux /proc), to find the devnet's processes. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

// Stopped here too if the test times out, so no process of its devnet outlives it.
let started: Devnet | undefined;
afterAll(async () => {
  await started?.stop();
});

describe('bench/scale.ts on a small devnet', () => {
  it('pushes 2 phases of jobs through 2 nodes: all completed and paid, figures measured, no process left', async () => {
    const pids = new Set<number>();
    const r = await runScale({
      nodes: 2,
      phases: [4, 6],
      requesters: 2,
      concurrency: 2,
      sampleMs: 500,
      idleMs: 1000,
      finalizeTimeoutMs: 40_000,
      // As the benchmark runs it: a block every 0.25 s, not a block per transaction.
      blockTimeS: 0.25,
      log: () => {},
      onDevnet: (net) => {
        started = net;
        for (const n of net.nodes) {
          pids.add(n.child.pid!);
          for (const c of childrenOf(n.child.pid!)) pids.add(c);
        }
        for (const v of net.verifiers) pids.add(v.child.pid!);
        pids.add(net.anvil.pid);
      },
    });
    expect(r.completed).toBe(10);
    expect(r.blockTimeS).toBe(0.25);
    expect(r.phases.map((p) => [p.completed, p.wrong, p.notFinalized])).toEqual([
      [4, 0, 0],
      [6, 0, 0],
    ]);
    for (const p of r.phases) {
      // Every call was paid for by a receipt; postJob costs gas whatever the goal.
      for (const k of ['postJob', 'claimJob', 'submitProof', 'finalize'] as const)
        expect(p.gas[k]).toBeGreaterThan(21_000);
      expect(p.memory.atEnd).toHaveLength(2);
      // A node's tree: the daemon, its enclave and the enclave's ML runtime, each resident.
      for (const m of p.memory.atEnd) {
        expect(m.daemonMiB).toBeGreaterThan(10);
        expect(m.enclaveMiB).toBeGreaterThan(10);
        expect(m.processes).toBeGreaterThanOrEqual(2);
      }
      // The challenge window is in the posted -> finalized time (chain seconds).
      expect(p.postedToFinalizedChainS.p50).toBeGreaterThanOrEqual(r.challengeWindowS);
      expect(p.postedToResultMs.p95).toBeGreaterThan(0);
      // Each job cost CPU in the node daemons, the enclaves and their ML runtimes (ended ones included).
      for (const k of ['nodeDaemons', 'enclaves', 'mlRuntimes', 'total'] as const)
        expect(p.load.cpuSecondsPerJob[k]).toBeGreaterThan(0);
      expect(Object.values(p.perNode).reduce((a, b) => a + b, 0)).toBe(p.jobs);
    }
    const lines = scaleHeadlines(r).map(ratioLine);
    for (const l of lines) expect(l).toMatch(/^ratio scale_\w+ [-\d.e+]+ (<=|>=)[\d.]+ (met|missed)$/);
    expect(lines[0]).toBe('ratio scale_jobs_completed 10 >=10 met');
    expect(pids.size).toBeGreaterThanOrEqual(5);
    await new Promise((res) => setTimeout(res, 500));
    expect([...pids].filter(alive)).toEqual([]);
  }, 300_000);
});

describe('what the benchmark counts', () => {
  const want = Float32Array.from([0.2, 0.3, 0.5]);
  const out = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

  it('an output equal to plain onnxruntime passes; an altered, reshaped or unparsable one does not', () => {
    expect(outputDiff(out({ probabilities: { dims: [1, 3], data: [0.2, 0.3, 0.5] } }), want)).toBeLessThan(
      1e-6,
    );
    expect(
      outputDiff(out({ probabilities: { dims: [1, 3], data: [0.2, 0.31, 0.49] } }), want),
    ).toBeGreaterThan(1e-3);
    expect(outputDiff(out({ probabilities: { dims: [1, 2], data: [0.2, 0.3] } }), want)).toBe(Infinity);
    expect(outputDiff(out({ other: { data: [0.2, 0.3, 0.5] } }), want)).toBe(Infinity);
    expect(outputDiff(new TextEncoder().encode('{not json'), want)).toBe(Infinity);
    expect(outputDiff(out({ probabilities: { data: [0.2, '0.3', 0.5] } }), want)).toBe(Infinity);
  });

  it('names the limit from the load: busy cores, then full queues, then the client, then the chain', () => {
    const base: LoadSummary = {
      cores: 2,
      machineBusy: 0.5,
      coresBy: {
        nodeDaemons: 0.3,
        enclaves: 0.2,
        mlRuntimes: 0.1,
        anvil: 0.1,
        verifiers: 0.1,
        requesterClient: 0.2,
        other: 0,
      },
      cpuSecondsPerJob: {
        nodeDaemons: 0.3,
        enclaves: 0.2,
        mlRuntimes: 0.3,
        anvil: 0.1,
        verifiers: 0.1,
        requesterClient: 0.2,
        other: 0,
        total: 1.2,
      },
      nodeQueue: { maxActive: 2, samplesWithWaiting: 0, samples: 10 },
      rpcMs: dist([1, 2, 3]),
      eventLoopDelayMs: { p50: 10, p99: 20, max: 30 },
      txPerS: 5,
      blocksPerS: 5,
    };
    expect(limitOf(base, {}).what).toBe('job concurrency');
    expect(limitOf({ ...base, machineBusy: 0.97 }, {}).what).toBe('CPU');
    const cpu = limitOf({ ...base, machineBusy: 0.97 }, {}).why;
    expect(cpu).toMatch(/^the machine's 2 cores were 97% busy \(our processes used 1\.00 of them\)/);
    // The CPU a job costs, heaviest first, and the rate two free cores would carry at that cost.
    expect(cpu).toMatch(
      /1\.20 CPU s per job \(nodeDaemons 0\.30, mlRuntimes 0\.30, .*\), so 2 free cores would carry at most 1\.7 jobs\/s$/,
    );
    expect(limitOf(base, { E_RATE_LIMITED: 1 }).what).toBe('node queue');
    expect(
      limitOf({ ...base, nodeQueue: { maxActive: 9, samplesWithWaiting: 5, samples: 10 } }, {}).what,
    ).toBe('node queue');
    expect(limitOf({ ...base, eventLoopDelayMs: { p50: 10, p99: 250, max: 400 } }, {}).what).toBe(
      'requester client',
    );
    expect(limitOf({ ...base, rpcMs: dist([300, 400]) }, {}).what).toBe('chain');
  });

  it('percentiles are nearest-rank', () => {
    const d = dist(Array.from({ length: 100 }, (_v, i) => i + 1));
    expect([d.p50, d.p95, d.max, d.mean]).toEqual([50, 95, 100, 50.5]);
    expect(Number.isNaN(dist([]).p95)).toBe(true);
  });
});
