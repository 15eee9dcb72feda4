import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';

// A new user stops `npm start` (Ctrl-C) and then runs the README's `--devnet .devnet/state.json`
// commands: the RPC the state file names is gone. The error must say so, naming the URL (exit 4,
// E_UNAVAILABLE: "try again later"), never blame a contract address (exit 3) nor print a bare
// "HTTP request failed".
const dir = mkdtempSync(join(tmpdir(), 'firn-stopped-devnet-'));
let state: string;
let rpcUrl: string;

beforeAll(async () => {
  // A port that was free a moment ago: nothing listens on it any more, like a stopped anvil.
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  rpcUrl = `http://127.0.0.1:${port}`;
  state = join(dir, 'state.json');
  writeFileSync(
    state,
    JSON.stringify({
      rpcUrl,
      chainId: 31337,
      contracts: {
        registry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
        verifierSet: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
        jobMarket: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
        dataLedger: '0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9',
        rewards: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
        timelock: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707',
      },
      deployBlock: '0',
    }),
  );
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
