import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { afterAll, beforeAll } from 'vitest';
import { type RpcMessage, rewritingRpcProxy } from '../../packages/chain/test/rpcProxy.ts';
import { startTestNetwork, stateOf, type TestNetwork } from '../e2e/network.ts';
import { inferArgs, writeDemoInferFiles } from '../helpers/cliInferDevnet.ts';

/** The `firn` command line entry. */
export const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');

/** A `firn infer` started by `CliInferOverProxy.spawnInfer`. */
export interface SpawnedInfer {
  child: ChildProcessWithoutNullStreams;
  /** What it wrote so far: stdout and stderr together. */
  output(): string;
  /** Its exit code once it closed (null when a signal ended it without a code). */
  exited: Promise<number | null>;
}

/** The set-up `setupCliInferOverProxy` registers; its fields are set once `beforeAll` ran. */
export interface CliInferOverProxy {
  /** The test's folder: the devnet state file, model.onnx, input.json, and the CLI's cwd. */
  dir: string;
  /** The devnet state file whose rpcUrl is the proxy. */
  stateFile: string;
  /** The CLI's environment: this process's, with FIRN_HOME (the job journal) under `dir`. */
  env: NodeJS.ProcessEnv;
  net: TestNetwork;
  proxy: { url: string; server: Server };
  /** Forward one request to the network's anvil, unchanged (for a rewrite that answers later). */
  forward(m: RpcMessage): Promise<unknown>;
  /** `firn infer --devnet STATE --model model.onnx --input input.json --out OUT` in `dir`. */
  spawnInfer(out: string): SpawnedInfer;
}

/**
 * Test-only: the set-up of the attacks that drive a `firn infer` process over an RPC proxy
 * (`tests/attacks/cli-infer-out-appears-meanwhile.test.ts`, `cli-interrupt-while-posting.test.ts`):
 * registers a `beforeAll` that starts a test network, a rewriting proxy in front of its anvil
 * (`rewrite` sees every request; see rewritingRpcProxy), a devnet state file naming the proxy, the
 * demo model and a four-feature input in a fresh temp folder (`firn-atk-<prefix>-`), and an
 * `afterAll` that closes the proxy, stops the network and removes both folders. `onStop` runs first
 * in `afterAll` (e.g. to release requests the rewrite holds).
 */
export function setupCliInferOverProxy(
  prefix: string,
  rewrite: (m: RpcMessage, s: CliInferOverProxy) => unknown | undefined,
  onStop: () => void = () => undefined,
): CliInferOverProxy {
  const dir = mkdtempSync(join(tmpdir(), `firn-atk-${prefix}-`));
  const s = {
    dir,
    stateFile: join(dir, 'state.json'),
    env: { ...process.env, FIRN_HOME: join(dir, 'home') },
    forward: async (m: RpcMessage): Promise<unknown> =>
      (await fetch(s.net.anvil.rpcUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(m),
      }).then((r) => r.json())) as unknown,
    spawnInfer(out: string): SpawnedInfer {
      const child = spawn(process.execPath, [FIRN, ...inferArgs(s.stateFile, out)], { cwd: dir, env: s.env });
      let text = '';
      child.stdout.on('data', (d) => {
        text += d.toString();
      });
      child.stderr.on('data', (d) => {
        text += d.toString();
      });
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      return { child, output: () => text, exited };
    },
    // net and proxy are set by the beforeAll below, before any test reads them.
  } as unknown as CliInferOverProxy;
  beforeAll(async () => {
    s.net = await startTestNetwork();
    s.proxy = await rewritingRpcProxy(s.net.anvil.rpcUrl, (m) => rewrite(m, s));
    writeFileSync(s.stateFile, JSON.stringify({ ...stateOf(s.net, s.net.rootPem), rpcUrl: s.proxy.url }));
    writeDemoInferFiles(dir);
  }, 180_000);
  afterAll(async () => {
    onStop();
    s.proxy?.server.closeAllConnections();
    s.proxy?.server.close();
    await s.net?.stop();
    if (s.net?.dataDir) rmSync(s.net.dataDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}
