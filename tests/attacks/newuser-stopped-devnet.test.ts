import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';
import { stoppedRpcUrl, writeDevnetState } from '../helpers/stoppedDevnetState.ts';

// A new user stops `npm start` (Ctrl-C) and then runs the README's `--devnet .devnet/state.json`
// commands: the RPC the state file names is gone. The error must say so, naming the URL (exit 4,
// E_UNAVAILABLE: "try again later"), never blame a contract address (exit 3) nor print a bare
// "HTTP request failed".
const dir = mkdtempSync(join(tmpdir(), 'firn-stopped-devnet-'));
let state: string;
let rpcUrl: string;

beforeAll(async () => {
  // A port that was free a moment ago: nothing listens on it any more, like a stopped anvil.
  rpcUrl = await stoppedRpcUrl();
  state = writeDevnetState(dir, rpcUrl);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--devnet with a stopped devnet', () => {
  for (const args of [
    ['nodes', 'list'],
    ['job', 'list'],
    ['job', 'status', `0x${'11'.repeat(32)}`],
    ['rewards', 'show'],
  ])
    it(`firn ${args.join(' ')} --devnet says the devnet's RPC cannot be reached (exit 4, names the URL)`, () => {
      const r = runFirn(dir, 60_000, ...args, '--devnet', state);
      expect(r.code, r.out).toBe(4);
      expect(r.out).toContain('E_UNAVAILABLE');
      expect(r.out).toContain(rpcUrl);
      expect(r.out).not.toMatch(/right firn contract|HTTP request failed|E_INTERNAL/);
    });
});
