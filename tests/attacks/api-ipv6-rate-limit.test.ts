import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createLogger, NodeDaemon } from '@firn/node';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestBundle } from '../e2e/network.ts';

// A stranger on the node API who holds one IPv6 /64 (what any ISP, cloud VM or home router hands
// out: 2^64 source addresses) sends each request from a fresh address of it. docs/api.md counts
// mutating requests "per IP" (50 per second), and http/limits.ts already groups addresses by /64
// (ipPrefix) for upload slots and connection eviction, but RequestRateLimiter is keyed on the full
// remote address (remoteIp), so one /64 gets an unbounded budget of attestations: each one makes
// the enclave produce a fresh quote (on TDX/SGX a slow call to the quoting service), and every job
// and session call the node makes through the same enclave pipe waits behind them.
//
// The attacker's addresses are simulated: each accepted socket is told its peer is the next
// address of 2001:db8:1:2::/64 before the node's own connection listeners see it (what a real
// /64 client binding a fresh source address per connection looks like to the node).

let node: NodeDaemon;
let port: number;
let dir: string;
let bundleDir: string;

beforeAll(async () => {
  const bundlePath = (await buildTestBundle('firn-atk-v6-')).path;
  bundleDir = dirname(dirname(dirname(bundlePath)));
  const root = await createSimulatedRoot();
  dir = mkdtempSync(join(tmpdir(), 'firn-atk-v6-'));
  const platformPath = join(dir, 'platform.json');
  writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(root)));
  node = new NodeDaemon({
    dataDir: join(dir, 'node'),
    bundlePath,
    enclaveEnv: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger: createLogger({ component: 'node' }, { write: () => undefined }),
  });
  await node.start();
  port = Number(new URL(node.url).port);
  let n = 0;
  const server = (node as unknown as { server: Server }).server;
  server.prependListener('connection', (s: Socket) => {
    n++;
    Object.defineProperty(s, 'remoteAddress', {
      value: `2001:db8:1:2::${n.toString(16)}`,
      configurable: true,
    });
  });
}, 120_000);

afterAll(async () => {
  await node?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (bundleDir?.includes('firn-atk-v6-')) rmSync(bundleDir, { recursive: true, force: true });
});

let lastSent = 0;
function attest(i: number): Promise<number> {
  const body = JSON.stringify({ nonce: `0x${i.toString(16).padStart(64, '0')}` });
  return new Promise((resolve) => {
    const r = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/attestation',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.on('error', () => resolve(0));
    r.on('finish', () => {
      lastSent = Date.now();
    });
    r.end(body);
  });
}

describe('node API rate limit and an IPv6 /64', () => {
  it('one /64 sending from a fresh address per request is held to the per-IP attestation rate, not served without bound', async () => {
    const limit = 50; // DEFAULT_HTTP_LIMITS.mutatingRequestsPerSecondPerIp
    const t0 = Date.now();
    const statuses = await Promise.all(Array.from({ length: 300 }, (_, i) => attest(i)));
    const sendMs = lastSent - t0;
    const served = statuses.filter((s) => s === 200).length;
    // Each request is admitted or refused by the limiter when it arrives, however long the enclave
    // then takes to answer: over the `sendMs` the attack took to send, one /64 may have about
    // `limit` a second (one extra window for the edges).
    const budget = limit * (Math.ceil(sendMs / 1000) + 1);
    expect(
      served,
      `served ${served} of 300 attestations sent from one /64 within ${sendMs} ms (budget ${budget})`,
    ).toBeLessThanOrEqual(budget);
  }, 120_000);
});
