import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@firn/core';
import { describe, expect, it } from 'vitest';

// A new user mistypes a flag of `firn job …` while the RPC is not (yet) up. The README: exit 3
// means "fix the command: a flag …", exit 4 "unreachable: try again later". A malformed --market,
// --registry or --rpc is a mistake in the command whatever the state of the RPC; answering it as
// "unreachable, try later" sends the user into retries that can never succeed.
const FIRN = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
const DEAD_RPC = 'http://127.0.0.1:1';
const firn = (args: string[]) =>
  spawnSync(process.execPath, [FIRN, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('attack: malformed flags of firn job with an unreachable RPC', () => {
  it('a malformed --market is exit 3 naming the flag, not exit 4 naming the RPC', () => {
    const r = firn(['job', 'list', '--rpc', DEAD_RPC, '--market', '0x123', '--json']);
    expect(JSON.parse(r.stdout).error.code).toBe('E_INVALID_INPUT');
    expect(r.stdout).toContain('--market');
    expect(r.status).toBe(3);
  });

  it('a malformed --registry is exit 3 naming the flag', () => {
    const r = firn(['nodes', 'list', '--rpc', DEAD_RPC, '--registry', 'registry', '--json']);
    expect(JSON.parse(r.stdout).error.code).toBe('E_INVALID_INPUT');
    expect(r.stdout).toContain('--registry');
    expect(r.status).toBe(3);
  });

  it('an --rpc that is not a URL is exit 3 naming the flag', () => {
    const r = firn(['job', 'list', '--rpc', 'localhost8545', '--market', `0x${'11'.repeat(20)}`, '--json']);
    expect(JSON.parse(r.stdout).error.code).toBe('E_INVALID_INPUT');
    expect(r.stdout).toContain('--rpc');
    expect(r.status).toBe(3);
  });
});
