import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { type Hex, repoRoot, sharedPath } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listJobs } from '../../packages/cli/src/commands/job.ts';
import { type Devnet, startDevnet } from '../../packages/cli/src/devnet/startDevnet.ts';

// The requester's half of "every job ends": a devnet of two nodes as separate processes; `firn
// train` runs a job on node 1, which is SIGKILLed after its first epoch. The CLI must notice the
// lost node, wait until its claim lapses, reclaim that job's escrow, attest node 2, re-grant the
// inputs to it under a new job and finish there: model written, one proof, the escrow of the lost
// job refunded, so the operators are paid once. Bounded: the train command must end within 90 s.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const CLAIM_TIMEOUT = 25;
const dir = mkdtempSync(join(tmpdir(), 'firn-reassign-'));
let net: Devnet;
const stateFile = join(dir, 'state.json');
const children: ChildProcess[] = [];

beforeAll(async () => {
  net = await startDevnet({
    dir: join(dir, 'devnet'),
    nodes: 2,
    verifiers: 2,
    gpuNodes: 0,
    readyTimeout: 120,
    log: () => {},
    // Short claims so a lost node's claim lapses within the test's bound.
    nodeArgs: ['--min-claim-seconds', '20'],
  });
  writeFileSync(stateFile, JSON.stringify(net.state), { mode: 0o600 });
}, 240_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await net?.stop();
});

function firnJson(args: string[]): unknown {
  const r = spawnSync(process.execPath, [FIRN, ...args, '--json'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, FIRN_HOME: join(dir, 'home') },
  });
  return JSON.parse(r.stdout);
}

describe('a job whose node dies is finished on another node', () => {
  it('SIGKILL of the node holding a training job: firn train still finishes elsewhere, model written, paid once', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const out = join(dir, 'model');
    const t0 = Date.now();
    const child = spawn(
      process.execPath,
      [
        FIRN,
        'train',
        '--devnet',
        stateFile,
        '--data',
        sharedPath('datasets', 'banknote_authentication.csv'),
        '--out',
        out,
        '--epochs',
        '16',
        '--batch-size',
        '16',
        '--claim-timeout',
        String(CLAIM_TIMEOUT),
        '--json',
      ],
      { env: { ...process.env, FIRN_HOME: join(dir, 'home') }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    const firstEpoch = new Promise<void>((resolve) => {
      child.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/epoch 1\/16/.test(stderr)) resolve();
        if (process.env['FIRN_TEST_VERBOSE']) process.stderr.write(b);
      });
    });
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await Promise.race([firstEpoch, exited]);
    expect(stderr).toMatch(/epoch 1\/16/);

    // The job that is running now, and the node process holding it (read in process: fast).
    const running = (
      await listJobs({ rpcUrl: net.anvil.rpcUrl, deployment: net.deployment }, { limit: 5 })
    ).find((j) => j.status === 'Claimed');
    expect(running, stderr).toBeDefined();
    const holder = net.state.nodes.find(
      (n) => n.enclaveId.toLowerCase() === running!.enclaveId!.toLowerCase(),
    );
    expect(holder).toBeDefined();
    process.kill(holder!.pid, 'SIGKILL');
    const killed = { jobId: running!.jobId, enclaveId: running!.enclaveId! };
    const tKill = Date.now();

    const code = await exited;
    const seconds = (Date.now() - t0) / 1000;
    writeFileSync(join(dir, 'train.stderr'), stderr);
    console.log(
      `firn train with its node killed after epoch 1: exit ${code} after ${seconds.toFixed(1)} s (${((Date.now() - tKill) / 1000).toFixed(1)} s after the kill; claim timeout ${CLAIM_TIMEOUT} s)`,
    );
    expect(code, stderr).toBe(0);
    expect(seconds).toBeLessThan(90);

    // The loss and the replacement were shown.
    expect(stderr).toMatch(/lost \(E_UNAVAILABLE/);
    expect(stderr).toMatch(/reclaimed; retrying on another node \(attempt 2 of 3\)/);

    // The model was written by the second node's job, with a proof that verified.
    const r = JSON.parse(stdout) as { jobId: Hex; node: { enclaveId: Hex }; proof: { ok: boolean } };
    expect(r.proof.ok).toBe(true);
    expect(r.jobId).not.toBe(killed.jobId);
    expect(r.node.enclaveId.toLowerCase()).not.toBe(killed.enclaveId.toLowerCase());
    for (const f of ['weights.safetensors', 'model.onnx', 'metrics.json', 'proof.json'])
      expect(existsSync(join(out, f))).toBe(true);
    const proof = JSON.parse(readFileSync(join(out, 'proof.json'), 'utf8')) as { proof: { jobId: string } };
    expect(proof.proof.jobId.toLowerCase()).toBe(r.jobId.toLowerCase());

    // Paid once: the lost job was reclaimed (escrow back to the requester, nothing left for an
    // operator), only the new job holds a proof; no other job of this requester exists.
    const lost = await getJob(reader, killed.jobId);
    expect(lost.status).toBe(JobStatus.Reclaimed);
    expect(lost.escrow).toBe(0n);
    const done = await getJob(reader, r.jobId);
    expect(done.status).toBe(JobStatus.Proved);
    const mine = (
      firnJson(['job', 'list', '--devnet', stateFile]) as { jobId: Hex; status: string; requester: Hex }[]
    ).filter((j) => j.requester.toLowerCase() === net.state.accounts.requester.address.toLowerCase());
    expect(mine.map((j) => j.status).sort()).toEqual(['Proved', 'Reclaimed']);
    // `firn job status` tells the requester what the lost job became.
    expect(firnJson(['job', 'status', killed.jobId, '--devnet', stateFile])).toMatchObject({
      status: 'Reclaimed',
      advice: 'the escrow was refunded',
    });
  }, 200_000);
});
