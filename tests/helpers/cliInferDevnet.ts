import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { type Hex, repoRoot } from '@firn/core';
import { afterAll, beforeAll } from 'vitest';
import { demoModel } from '../../packages/cli/src/devnet/demo/inferenceDemo.ts';
import { startTestNetwork, stateOf, type TestNetwork } from '../e2e/network.ts';

/** The `firn` command line entry (packages/cli/bin/firn.mjs). */
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');

/**
 * The README's `firn infer --devnet <stateFile> --model model.onnx --input input.json --out <out>`,
 * then `extra`: the arguments after `firn`, relative to a folder `writeDemoInferFiles` filled.
 */
export function inferArgs(stateFile: string, out: string, extra: string[] = []): string[] {
  return [
    'infer',
    '--devnet',
    stateFile,
    '--model',
    'model.onnx',
    '--input',
    'input.json',
    '--out',
    out,
    ...extra,
  ];
}

/** Writes the demo model (`<dir>/model.onnx`) and a [1, 4] float32 input for it (`<dir>/input.json`). */
export function writeDemoInferFiles(dir: string): void {
  writeFileSync(join(dir, 'model.onnx'), demoModel());
  writeFileSync(
    join(dir, 'input.json'),
    JSON.stringify({ features: { dims: [1, 4], type: 'float32', data: [1, 2, 3, 4] } }),
  );
}

/** How a `firn` child process run by `CliInferDevnet.firn` ended. */
export interface CliRun {
  /** Its exit status; null when killed. */
  status: number | null;
  /** What it wrote to stderr. */
  stderr: string;
  /** stdout and stderr together, in the order they arrived. */
  output: string;
}

/** A `firn` child process started by `CliInferDevnet.spawnFirn`, still running. */
export interface SpawnedFirn {
  child: ChildProcessWithoutNullStreams;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** Its exit code once it exited (null when a signal ended it). */
  exited: Promise<number | null>;
}

/** The set-up `useCliInferDevnet` registers; `net` is set once `beforeAll` ran. */
export interface CliInferDevnet {
  /** The test's folder (`firn-atk-<prefix>-…` under the temp dir): the CLI's cwd, removed after. */
  dir: string;
  /** `<dir>/state.json`: the devnet state file of `net`. */
  stateFile: string;
  /** The CLI's environment: this process's, with FIRN_HOME set as `useCliInferDevnet` was asked. */
  env: NodeJS.ProcessEnv;
  net: TestNetwork;
  /** `firn <args>` in `dir`, without blocking this process (the node under test runs in it); killed after `timeoutMs`. */
  firn(args: string[], timeoutMs: number): Promise<CliRun>;
  /** `firn <args>` in `dir`, left running for the test to signal. */
  spawnFirn(args: string[]): SpawnedFirn;
  /** `firn infer --devnet <stateFile> --model model.onnx --input input.json --out <out> ...extra`. */
  inferArgs(out: string, extra?: string[]): string[];
}

/**
 * For the calling test file, the set-up of the attacks that run the README's `firn infer --devnet`
 * as a new user against a running test network: a fresh folder `firn-atk-<prefix>-…`; a
 * `beforeAll` that starts the network and writes its state file, the demo model (`model.onnx`) and
 * a four-feature input (`input.json`) there; an `afterAll` that stops the network and removes the
 * folder. FIRN_HOME is `<dir>/<home>` (`home` unless given); the test creates it or not.
 */
export function useCliInferDevnet(prefix: string, home = 'home'): CliInferDevnet {
  const dir = mkdtempSync(join(tmpdir(), `firn-atk-${prefix}-`));
  const stateFile = join(dir, 'state.json');
  const env = { ...process.env, FIRN_HOME: join(dir, home) };
  const s: CliInferDevnet = {
    dir,
    stateFile,
    env,
    net: undefined as unknown as TestNetwork,
    firn: (args, timeoutMs) =>
      new Promise((resolve) => {
        const c = spawn(process.execPath, [FIRN, ...args], { cwd: dir, env });
        let stderr = '';
        let output = '';
        c.stderr.on('data', (d) => {
          stderr += d.toString();
          output += d.toString();
        });
        c.stdout.on('data', (d) => {
          output += d.toString();
        });
        const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
        c.on('close', (status) => {
          clearTimeout(t);
          resolve({ status, stderr, output });
        });
      }),
    spawnFirn(args) {
      const child = spawn(process.execPath, [FIRN, ...args], { cwd: dir, env });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, stderr: () => stderr, exited };
    },
    inferArgs: (out, extra = []) => inferArgs(stateFile, out, extra),
  };
  beforeAll(async () => {
    s.net = await startTestNetwork();
    writeFileSync(stateFile, JSON.stringify(stateOf(s.net, s.net.rootPem)));
    writeDemoInferFiles(dir);
  }, 180_000);
  afterAll(async () => {
    await s.net?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

/**
 * The job a running `firn infer` posted, once the node has it: its stderr shows `job 0x… posted`
 * and then a progress event. Undefined when the command exits first or `timeoutMs` passes.
 */
export function jobOnceRunning(p: SpawnedFirn, timeoutMs: number): Promise<Hex | undefined> {
  return Promise.race([
    new Promise<Hex>((resolve) => {
      p.child.stderr.on('data', () => {
        const m = /job (0x[0-9a-f]{64}) posted[\s\S]*progress:/.exec(p.stderr());
        if (m) resolve(m[1] as Hex);
      });
    }),
    p.exited.then(() => undefined),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs)),
  ]);
}

/**
 * `jobId`'s status once it leaves Open and Claimed (the node finished or gave it up), read every
 * 250 ms at most `attempts` times; the last status read when it never did.
 */
export async function settledJobStatus(net: TestNetwork, jobId: Hex, attempts: number): Promise<JobStatus> {
  const clients = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
  let status = JobStatus.Open;
  for (let i = 0; i < attempts; i++) {
    status = (await getJob(clients, jobId)).status;
    if (status !== JobStatus.Open && status !== JobStatus.Claimed) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return status;
}
