import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnDeployment } from '@firn/chain';
import { type Hex, repoRoot } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { afterAll, describe, expect, it } from 'vitest';
import { chainFlags, jobReclaimCommand } from './jobInterrupt.ts';
import { journalPosts, recordFile } from './jobJournal.ts';
import { cliErrorBody } from './output.ts';
import { journalOptions, redactRpcUrl } from './rpcUrl.ts';

// Decision 1686: RPC URLs carry API keys (https://host/v2/KEY, user:pass@host, ?apikey=KEY); the
// job journal, error messages and printed commands must never hold them.
const KEY = 'k3yK3yk3yK3yk3yK3yk3y0123'; // a made-up API key
const PASS = 'pa55w0rd-made-up';
const QKEY = 'QueryKey0987654321';
const SECRETS = [KEY, PASS, QKEY];
const dir = mkdtempSync(join(tmpdir(), 'firn-rpcurl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redactRpcUrl', () => {
  it.each([
    ['http://127.0.0.1:8545', 'http://127.0.0.1:8545'],
    [`https://eth-mainnet.g.alchemy.com/v2/${KEY}`, 'https://eth-mainnet.g.alchemy.com/v2/***'],
    [`https://user:${PASS}@rpc.example.org/`, 'https://***@rpc.example.org/'],
    [`https://rpc.example.org/?apikey=${QKEY}&chain=1`, 'https://rpc.example.org/?apikey=***&chain=***'],
    [`wss://mainnet.infura.io/ws/v3/${'0a'.repeat(16)}`, 'wss://mainnet.infura.io/ws/v3/***'],
    ['not a url', '***'],
  ])('%s -> %s', (url, want) => {
    expect(redactRpcUrl(url)).toBe(want);
  });
});

describe('no RPC credentials in the journal or in messages', () => {
  const keyed = `https://user:${PASS}@rpc.example.org/v2/${KEY}?apikey=${QKEY}`;

  it('a journal entry written for a command given a keyed --rpc and --also-rpc holds no key', () => {
    process.env['FIRN_HOME'] = join(dir, 'home');
    const jobId = keccak256(toHex('keyed job'));
    const p = journalPosts({
      command: 'infer',
      options: journalOptions({ model: '/m.onnx', rpc: keyed, alsoRpc: [keyed] }),
      deployment: { chainId: 1, jobMarket: `0x${'03'.repeat(20)}` } as FirnDeployment,
      requester: `0x${'aa'.repeat(20)}` as Hex,
      guard: { sent: () => undefined, posted: () => undefined },
      warn: () => undefined,
    });
    p.onPostSent({ hash: keccak256(toHex('tx')), expectedJobId: jobId, fromBlock: 1n });
    const text = readFileSync(recordFile(jobId), 'utf8');
    for (const s of SECRETS) expect(text).not.toContain(s);
    // What finds the chain again is there: the host, and the chain id.
    expect(JSON.parse(text)).toMatchObject({
      options: { rpc: 'https://***@rpc.example.org/v2/***?apikey=***' },
      sentOn: { chainId: 1 },
    });
  });

  it('the commands printed on an interrupt carry no key', () => {
    const line = jobReclaimCommand(keccak256(toHex('j')), chainFlags({ rpc: keyed }));
    for (const s of SECRETS) expect(line).not.toContain(s);
  });

  it('an unreachable keyed RPC is named without its key: the error body and the CLI output', () => {
    // Nothing listens on port 9 of this host: the RPC is unreachable.
    const unreachable = `http://user:${PASS}@127.0.0.1:9/v2/${KEY}?apikey=${QKEY}`;
    const r = spawnSync(
      process.execPath,
      [
        join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs'),
        'job',
        'list',
        '--rpc',
        unreachable,
        '--market',
        `0x${'03'.repeat(20)}`,
      ],
      { env: { ...process.env, FIRN_HOME: join(dir, 'home2') }, encoding: 'utf8', timeout: 60_000 },
    );
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toContain('127.0.0.1:9');
    for (const s of SECRETS) expect(out, out).not.toContain(s);
    expect(r.status, out).not.toBe(0);
    const body = cliErrorBody(Object.assign(new Error(`request to ${unreachable} failed`), {}));
    for (const s of SECRETS) expect(body.message).not.toContain(s);
  }, 90_000);
});
