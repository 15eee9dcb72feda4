import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCannedJsonRpc } from '../helpers/cannedJsonRpc.ts';
import { writeDevnetState } from '../helpers/stoppedDevnetState.ts';

// A new user has FIRN_RPC_URL exported in their shell (the README suggests it for a keyed RPC,
// decision 1686) for a testnet, and later runs the README's devnet command
// `firn job list --devnet .devnet/state.json`. resolveChain (chainArgs.ts) lets FIRN_RPC_URL
// stand for --rpc, and --rpc replaces the RPC the devnet file names; the chain-id check then
// refuses with "… the RPC answers chain id 11155111: pass the matching --rpc": the user passed no
// --rpc, and the message never names FIRN_RPC_URL, the setting that caused it. Safe outcome: the
// refusal names FIRN_RPC_URL (or the devnet file's own RPC is used).
const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-atk-envrpc-'));
let testnet: Server;
let testnetUrl: string;

beforeAll(async () => {
  // An RPC of another chain (Sepolia's id) that answers eth_chainId.
  ({ server: testnet, url: testnetUrl } = await startCannedJsonRpc({ result: '0xaa36a7' }));
  writeDevnetState(dir, 'http://127.0.0.1:8545');
});

afterAll(() => {
  testnet?.closeAllConnections();
  testnet?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('FIRN_RPC_URL and --devnet', () => {
  it('a refusal caused by FIRN_RPC_URL names FIRN_RPC_URL, not a --rpc the user never passed', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((res) =>
      execFile(
        process.execPath,
        [bin, 'job', 'list', '--devnet', join(dir, 'state.json')],
        { env: { ...process.env, FIRN_RPC_URL: testnetUrl }, timeout: 50_000 },
        (e, stdout, stderr) =>
          res({ code: e ? ((e as { code?: number }).code ?? null) : 0, out: `${stdout}${stderr}` }),
      ),
    );
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toContain('FIRN_RPC_URL');
  }, 60_000);
});
