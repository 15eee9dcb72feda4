import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A careless operator starts `firn node start --port P` (or `firn kms start`, `firn dashboard`) on a port another program (or a node
// started before) already holds. Promised: one `error: CODE: message` line naming the port and
// the flag, with a documented exit code, and no process left behind. It was Node's raw stack
// trace for an unhandled 'error' event (EADDRINUSE), exit 1.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-port-'));
let holder: Server;
let port: number;

beforeAll(async () => {
  writeFileSync(
    join(dir, 'platform.json'),
    JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())),
  );
  holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  port = (holder.address() as { port: number }).port;
});
afterAll(() => {
  holder?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startOnTakenPort(args: string[]) {
  const child = spawn(process.execPath, [FIRN, ...args], { cwd: dir });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => {
    stderr += d.toString();
  });
  child.stdout.on('data', (d) => {
    stdout += d.toString();
  });
  const status = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
  const out = stderr + stdout;
  expect(out).not.toMatch(/\n\s+at /); // no stack trace
  expect(out).toMatch(/error: E_[A-Z_]+: .*--port/);
  expect(out).toContain(String(port));
  expect([3, 4]).toContain(status);
}

describe('attack: a daemon started on a port in use', () => {
  it('firn node start names the port and --port, exits 3 or 4, no stack trace', async () => {
    const args = ['node', 'start', '--no-register', '--sim-platform', join(dir, 'platform.json')];
    await startOnTakenPort([...args, '--data-dir', join(dir, 'node'), '--port', String(port)]);
  }, 60_000);

  it('firn kms start names the port and --port, exits 3 or 4, no stack trace', async () => {
    const args = [
      'kms',
      'start',
      '--sim-platform',
      join(dir, 'platform.json'),
      '--data-dir',
      join(dir, 'kms'),
    ];
    args.push('--policy', 'dev', '--allow-measurement', `0x${'ab'.repeat(32)}`, '--port', String(port));
    await startOnTakenPort(args);
  }, 60_000);

  it('firn dashboard names the port and --port, exits 3 or 4, no stack trace', async () => {
    const a = (n: number) => `0x${n.toString(16).padStart(40, '0')}`;
    const state = {
      rpcUrl: 'http://127.0.0.1:1',
      chainId: 31337,
      contracts: { registry: a(1), verifierSet: a(2), jobMarket: a(3), dataLedger: a(4) },
      deployBlock: '0',
    };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state));
    await startOnTakenPort(['dashboard', '--devnet', join(dir, 'state.json'), '--port', String(port)]);
  }, 60_000);

  it('firn dashboard with a --host that does not resolve names the host, exit 3, not E_INTERNAL', async () => {
    const child = spawn(
      process.execPath,
      [FIRN, 'dashboard', '--devnet', join(dir, 'state.json'), '--host', 'nosuch.invalid', '--port', '0'],
      { cwd: dir },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    const status = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 50_000);
      child.on('close', (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
    expect(stderr).not.toMatch(/E_INTERNAL/);
    expect(stderr).toContain('nosuch.invalid');
    expect(status).toBe(3);
  }, 60_000);
});
