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
import { hasCredentials, journalOptions, redactRpcUrl, redactUrlsIn } from './rpcUrl.ts';

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

// Decision 1751: some providers put the key in the host name (https://KEY.rpc.example/).
describe('redactRpcUrl: a key in a host name label', () => {
  const HEX_KEY = '9f3c'.repeat(8); // 32 hex characters, made up
  const B58_KEY = '3yZe7dTvXnN5qzYbY1h8aRkG2uXjW6cPq9sLmD4fVt8'; // 43 base58 characters, made up
  const B64_KEY = 'Zm9vYmFy_c2VjcmV0-a2V5MDEyMzQ1Njc4OQ'; // 36 base64url characters, made up

  it.each([
    [`https://${HEX_KEY}.rpc.example/`, 'https://***.rpc.example/'],
    [`https://${B58_KEY}.solana.rpc.example:8899`, 'https://***.solana.rpc.example:8899'],
    [
      `wss://ws.${B64_KEY}.rpc.example/v2/${KEY}?apikey=${QKEY}`,
      'wss://ws.***.rpc.example/v2/***?apikey=***',
    ],
    [`https://user:${PASS}@${HEX_KEY}.rpc.example:8545/`, 'https://***@***.rpc.example:8545/'],
  ])('%s -> %s', (url, want) => {
    const got = redactRpcUrl(url);
    expect(got).toBe(want);
    // URL parsing lowercases the host: the key must be gone in either case.
    for (const k of [HEX_KEY, B58_KEY, B64_KEY, KEY, PASS, QKEY]) {
      expect(got).not.toContain(k);
      expect(got).not.toContain(k.toLowerCase());
    }
    expect(hasCredentials(url)).toBe(true);
  });

  it.each([
    'https://eth-mainnet.g.alchemy.com/',
    // Words joined by hyphens, however long, are a name, not a key.
    'https://my-company-ethereum-archive-node-eu-west-1.rpc.example/',
    // Under 32 characters, or without a digit.
    `https://${HEX_KEY.slice(1)}.rpc.example/`,
    'https://abcdefghijklmnopqrstuvwxyzabcdefgh.rpc.example/',
    // An internationalized (punycode) label.
    'https://xn--mnchenmnchenmnchenmnchen2024-16cggg.example/',
    'http://[2001:db8::1]:8545',
  ])('%s keeps its host', (url) => {
    expect(redactRpcUrl(url)).toBe(url);
    expect(hasCredentials(url)).toBe(false);
  });

  it('a message naming a keyed host is redacted (error bodies, log lines)', () => {
    const text = `cannot reach the RPC endpoint https://${B58_KEY}.rpc.example/v1, retrying.`;
    expect(redactUrlsIn(text)).toBe('cannot reach the RPC endpoint https://***.rpc.example/v1, retrying.');
    // viem's error for an RPC that does not answer carries the URL (output.ts names the endpoint).
    const unreachable = Object.assign(new Error('HTTP request failed.'), {
      name: 'HttpRequestError',
      url: `https://${HEX_KEY}.rpc.example/`,
    });
    const body = cliErrorBody(unreachable);
    expect(body.message).not.toContain(HEX_KEY);
    expect(body.message).toContain('cannot reach the RPC endpoint https://***.rpc.example/');
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
