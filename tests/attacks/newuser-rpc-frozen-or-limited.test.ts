import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCannedJsonRpc } from '../helpers/cannedJsonRpc.ts';

// A new user's RPC answers, but not as a running devnet does:
// - frozen: they pressed Ctrl-Z instead of Ctrl-C on `npm start` (anvil is stopped, the kernel still
//   accepts the connection, nothing ever answers) or a hosted RPC hangs;
// - limited: a hosted RPC's daily quota is spent and it answers every call with the JSON-RPC
//   error -32005 "limit exceeded" (what Infura and Alchemy send).
// README: "4: something is unreachable or busy (node, RPC, chain, a timeout): try again later",
// with E_TIMEOUT / E_UNAVAILABLE / E_RATE_LIMITED, and "Errors name their cause (the path, URL…)".
// Today both end as a bare `E_INTERNAL: internal error`, exit 1 ("an unexpected error"), naming
// nothing: the user cannot tell their RPC is the problem.
const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');
const MARKET = '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0';
const REGISTRY = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512';
let frozen: Server;
let limited: Server;
let frozenUrl: string;
let limitedUrl: string;

function firn(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [bin, ...args], { timeout: 110_000 }, (e, stdout, stderr) =>
      res({ code: e ? ((e as { code?: number }).code ?? null) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const listen = (s: Server) =>
  new Promise<string>((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  // Reads the request, never answers (a SIGSTOPped anvil's socket behaves the same to a client).
  frozen = createServer((req) => req.resume());
  frozenUrl = await listen(frozen);
  ({ server: limited, url: limitedUrl } = await startCannedJsonRpc({
    error: { code: -32005, message: 'daily request count exceeded, request rate limited' },
  }));
});

afterAll(() => {
  frozen?.closeAllConnections();
  frozen?.close();
  limited?.closeAllConnections();
  limited?.close();
});

describe('an RPC that hangs or is rate limited is named as such (exit 4), never a bare E_INTERNAL', () => {
  it('a frozen RPC (Ctrl-Z on the devnet): `firn nodes list --json` says E_TIMEOUT/E_UNAVAILABLE naming the URL, exit 4', async () => {
    const r = await firn('nodes', 'list', '--rpc', frozenUrl, '--registry', REGISTRY, '--json');
    expect(r.out).not.toMatch(/E_INTERNAL/);
    expect(r.out).toMatch(/E_TIMEOUT|E_UNAVAILABLE/);
    expect(r.out).toContain(new URL(frozenUrl).host);
    expect(r.code, r.out).toBe(4);
  }, 120_000);

  it('a rate-limited hosted RPC (-32005): `firn job list` says E_RATE_LIMITED/E_UNAVAILABLE, exit 4', async () => {
    const r = await firn('job', 'list', '--rpc', limitedUrl, '--market', MARKET);
    expect(r.out).not.toMatch(/E_INTERNAL/);
    expect(r.out).toMatch(/E_RATE_LIMITED|E_UNAVAILABLE/);
    expect(r.code, r.out).toBe(4);
  }, 120_000);
});
