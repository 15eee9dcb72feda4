import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { type Hex, repoRoot } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { startTestNetwork, stateOf, type TestNetwork } from '../e2e/network.ts';

// A careless new user whose $FIRN_HOME cannot be written (set to a file by mistake; or a
// ~/.firn that an earlier `sudo npx firn …` left owned by root) runs `firn infer --devnet …` and
// presses Ctrl-C once the node has the job, as the README invites: "Ctrl-C … loses nothing: … one a
// node has keeps running, and the command prints the `firn job result JOBID … --out DIR` line that
// later fetches and opens its result". Without --kem-key the result key is derived from the
// requester key and a random per-job salt kept ONLY in $FIRN_HOME/jobs/ (resultKem.ts, decision
// 1630). infer never checks that the journal can be written before it pays the escrow
// (jobJournal.ts recordJob: best effort, a warning after the post), so the salt dies with the
// process: the node runs the job, the operator is paid, and the printed `firn job result` line
// can never open the outputs. Safe outcome: either infer refuses before any escrow is paid (as it
// does for an --out it cannot write), or the printed command opens the result.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-home-'));
const stateFile = join(dir, 'state.json');
const homeFile = join(dir, 'firn-home');
const env = { ...process.env, FIRN_HOME: homeFile };
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
  writeFileSync(stateFile, JSON.stringify(stateOf(net, net.rootPem)));
  writeFileSync(join(dir, 'model.onnx'), demoModel());
  writeFileSync(
    join(dir, 'input.json'),
    JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
  );
  // Not a folder: nothing can be created under it (ENOTDIR, for root as for anyone).
  writeFileSync(homeFile, 'not a folder\n');
}, 180_000);

afterAll(async () => {
  await net?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function firn(args: string[], timeoutMs: number): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [FIRN, ...args], { cwd: dir, env });
    let stderr = '';
    c.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    c.stdout.on('data', (d) => {
      stderr += d.toString();
    });
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stderr });
    });
  });
}

describe('attack: Ctrl-C on firn infer with a $FIRN_HOME that cannot be written', () => {
  it('either nothing is paid, or the printed `firn job result` line opens the result', async () => {
    const args = [
      'infer',
      '--devnet',
      stateFile,
      '--model',
      'model.onnx',
      '--input',
      'input.json',
      '--out',
      'c.json',
    ];
    const child = spawn(process.execPath, [FIRN, ...args], { cwd: dir, env });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const jobId = await Promise.race([
      new Promise<Hex>((resolve) => {
        child.stderr.on('data', () => {
          const m = /job (0x[0-9a-f]{64}) posted[\s\S]*progress:/.exec(stderr);
          if (m) resolve(m[1] as Hex);
        });
      }),
      exited.then(() => undefined),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 45_000)),
    ]);
    if (jobId === undefined) {
      // Refused before paying: the safe outcome (exit 3, naming FIRN_HOME), and no job posted.
      child.kill('SIGKILL');
      expect(stderr).not.toMatch(/posted/);
      expect(stderr).toMatch(/FIRN_HOME|firn-home/);
      return;
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    let status = JobStatus.Open;
    for (let i = 0; i < 120; i++) {
      status = (await getJob(clients, jobId)).status;
      if (status !== JobStatus.Open && status !== JobStatus.Claimed) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // The node ran it: the escrow goes to the operator.
    expect(status).not.toBe(JobStatus.Reclaimed);
    const out = join(dir, 'c-result');
    const r = await firn(['job', 'result', jobId, '--devnet', stateFile, '--out', out], 30_000);
    const files = existsSync(out) ? readdirSync(out) : [];
    // An opened output, not only `output.sealed` under a key nobody can derive again.
    expect(
      files.filter((f) => f !== 'proof.json' && !f.endsWith('.sealed')),
      `${stderr}\n--- job result exit ${r.status}:\n${r.stderr}`,
    ).toEqual(['output']);
  }, 120_000);
});
