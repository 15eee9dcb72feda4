import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, startAnvil } from '@firn/chain';
import { repoRoot } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireDevnetLock } from '../../packages/cli/src/devnet/startDevnet.ts';
import { cliErrorBody, exitCodeOf } from '../../packages/cli/src/output.ts';

// A new user's mistakes, each of which used to print `error: E_INTERNAL: internal error` (or
// worse, cost an escrow): the cause must be named (path, URL, address), with a stable code, the
// documented exit code, and one error format per output mode.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-cli-errors-'));
const NO_CODE = '0x00000000000000000000000000000000000000f1';
let anvil: AnvilInstance;

function firn(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [FIRN, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    cwd: dir,
    env: { ...process.env, FIRN_HOME: join(dir, 'home'), ...env },
  });
}

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  writeFileSync(join(dir, 'in.json'), JSON.stringify({ x: { dims: [1, 1], type: 'float32', data: [1] } }));
  writeFileSync(join(dir, 'model.onnx'), 'not really a model');
}, 60_000);

afterAll(async () => {
  await anvil?.stop();
});

describe('the CLI names the cause of a user mistake', () => {
  it('a wrong --model path names the path (E_NOT_FOUND, exit 3), before any network', () => {
    const r = firn([
      'infer',
      '--model',
      join(dir, 'nope.onnx'),
      '--input',
      join(dir, 'in.json'),
      '--out',
      join(dir, 'out.json'),
      '--rpc',
      anvil.rpcUrl,
      '--market',
      NO_CODE,
    ]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`E_NOT_FOUND: --model ${join(dir, 'nope.onnx')}: no such file`);
    expect(r.stderr).not.toContain('E_INTERNAL');
  });

  it('a wrong --rpc URL names the URL (unreachable: E_UNAVAILABLE, exit 4; not a URL: exit 3), as text or as JSON', () => {
    const text = firn(['job', 'list', '--rpc', 'http://127.0.0.1:9', '--market', NO_CODE]);
    expect(text.status).toBe(4);
    expect(text.stderr).toMatch(
      /^error: E_UNAVAILABLE: cannot reach the RPC endpoint http:\/\/127\.0\.0\.1:9/,
    );
    // Not a URL at all is a mistake in the command (exit 3), named before anything is asked: the
    // flag is named, the text itself is not echoed (it may be a key pasted in the wrong place,
    // decision 1686).
    const json = firn(['nodes', 'list', '--rpc', 'not-a-url', '--registry', NO_CODE, '--json']);
    expect(json.status).toBe(3);
    expect(json.stderr).toBe('');
    const body = JSON.parse(json.stdout);
    expect(body).toMatchObject({
      error: { code: 'E_INVALID_INPUT', message: expect.stringContaining('--rpc *** is not a URL') },
    });
    expect(body.error.message).not.toContain('not-a-url');
  });

  it('a wrong contract address names the address (exit 3), never E_INTERNAL', () => {
    const r = firn(['job', 'list', '--rpc', anvil.rpcUrl, '--market', NO_CODE]);
    expect(r.stderr).toContain(NO_CODE);
    expect(r.stderr).not.toContain('E_INTERNAL');
    expect(r.status).toBe(3);
  });

  it('--out in a missing directory is refused before the chain is even asked (nothing paid)', () => {
    // The RPC is unreachable: had the command gone on to pay, the error would be about the RPC.
    const r = firn([
      'infer',
      '--model',
      join(dir, 'model.onnx'),
      '--input',
      join(dir, 'in.json'),
      '--out',
      '/nope/x.json',
      '--rpc',
      'http://127.0.0.1:9',
      '--market',
      NO_CODE,
    ]);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('E_NOT_FOUND: --out /nope/x.json: the directory /nope does not exist');
    const t = firn([
      'train',
      '--data',
      join(dir, 'in.json'),
      '--out',
      join(dir, 'in.json', 'model'),
      '--rpc',
      'http://127.0.0.1:9',
      '--no-precheck',
    ]);
    expect(t.status).toBe(3);
    expect(t.stderr).toMatch(/E_INVALID_INPUT: --out .* is a file, not a directory/);
  });

  it('a usage error is one JSON line with --json (same format as every other error), exit 3', () => {
    const r = firn(['job', 'status', '--json']);
    expect(r.status).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'E_INVALID_INPUT' } });
  });

  it('a missing shared/ folder is named with how to fix it', () => {
    const shared = join(dir, 'no-shared');
    const prev = process.env['FIRN_SHARED_DIR'];
    process.env['FIRN_SHARED_DIR'] = shared;
    try {
      const e = Object.assign(new Error('ENOENT'), {
        code: 'ENOENT',
        path: join(shared, 'datasets', 'x.csv'),
      });
      const body = cliErrorBody(e);
      expect(body.code).toBe('E_NOT_FOUND');
      expect(body.message).toContain('FIRN_SHARED_DIR');
      expect(exitCodeOf(e)).toBe(3);
    } finally {
      if (prev === undefined) delete process.env['FIRN_SHARED_DIR'];
      else process.env['FIRN_SHARED_DIR'] = prev;
    }
  });
});

describe('a second devnet in the same folder is refused', () => {
  it('the lock refuses while its owner lives, and a stale lock is taken over', () => {
    const d = join(dir, 'dn-lock');
    const release = acquireDevnetLock(d);
    expect(() => acquireDevnetLock(d)).toThrow(/a devnet is already running in .*dn-lock \(pid \d+\)/);
    release();
    // A lock left by a process that is gone (pid 2^22 + 1 is above Linux's default pid_max).
    writeFileSync(join(d, 'devnet.lock'), '4194305\n');
    const again = acquireDevnetLock(d);
    again();
  });

  it('`firn devnet` on a folder another devnet holds exits 3 and wipes nothing', () => {
    const d = join(dir, 'dn-busy');
    const release = acquireDevnetLock(d); // this test process plays the running devnet
    mkdirSync(join(d, 'keys'), { recursive: true });
    writeFileSync(join(d, 'keys', 'operator-1.key'), 'precious');
    const r = firn(['devnet', '--dir', d, '--no-demo']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/E_CONFLICT: a devnet is already running in .*dn-busy/);
    expect(existsSync(join(d, 'keys', 'operator-1.key'))).toBe(true);
    release();
  });
});
