import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DEV_POLICY, PRODUCTION_POLICY } from '@firn/attestation';
import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import {
  AgreeingChainView,
  attestNode,
  NodeApi,
  openInferenceSession,
  type RunJobOptions,
  runJob,
  sealInput,
} from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFunctionSelector } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { governBundleMeasurement } from '../helpers/governBundleMeasurement.ts';
import { requesterOptions, requestScope, startTestNetwork, type TestNetwork } from './network.ts';

// Attacks on the node API by strangers on the network, and on the requester's registry reads by a
// lying RPC endpoint. Each performs the attack, asserts it is refused with the documented status,
// and that nothing changed (records, chain, data dir); the real requester then succeeds. Not
// covered here: the idle-timeout of a stalled upload (packages/node/src/http/limits.test.ts).
let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 11 });
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const input = { x: { dims: [1, 3], type: 'float32', data: [1, 2, 3] } };

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
}, 120_000);
afterAll(() => net?.stop());

const scope = () => requestScope(net);
const apiFor = (requesterKey: Hex) => new NodeApi(net.node.url, 10_000, { requesterKey, scope: scope() });
const artifactFiles = async () => (await import('node:fs')).readdirSync(`${net.dataDir}/artifacts`).sort();

function jobOptions(extra: Partial<RunJobOptions> = {}): RunJobOptions {
  return {
    ...requesterOptions(net, kem),
    kind: 'inference',
    inputs: [
      { role: 'model', bytes: model.bytes, contentType: 'application/onnx' },
      { role: 'input', bytes: enc(input), contentType: 'application/json' },
    ],
    params: {},
    escrow: 10n ** 15n,
    ...extra,
  };
}

/** Run `f` with every fetch to a URL ending in `suffix` passed through `hook` first. */
async function withFetchHook<T>(
  suffix: string,
  hook: (url: string, init: RequestInit) => Promise<void>,
  f: () => Promise<T>,
): Promise<T> {
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    if (String(url).endsWith(suffix) && init) {
      globalThis.fetch = realFetch;
      try {
        await hook(String(url), init);
      } finally {
        globalThis.fetch = hookFetch;
      }
    }
    return realFetch(url, init);
  }) as typeof fetch;
  const hookFetch = globalThis.fetch;
  try {
    return await f();
  } finally {
    globalThis.fetch = realFetch;
  }
}

describe('strangers change nothing on the node API', () => {
  it('a job POST from anyone but the on-chain requester gets 401/403 (415 as text/plain) and changes nothing', async () => {
    const stranger = generatePrivateKey();
    const seen: Record<string, number> = {};
    let jobId: Hex | undefined;
    const r = await withFetchHook(
      '/v1/jobs',
      async (url, init) => {
        const body = JSON.parse(String(init.body)) as {
          jobId: Hex;
          enc: Hex;
          ciphertext: string;
          inputs: Hex[];
        };
        const headers = init.headers as Record<string, string>;
        jobId = body.jobId;
        // Unsigned, as any host on the network could send it: 401.
        const unsigned = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: init.body as string,
        });
        seen.unsigned = unsigned.status;
        expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHENTICATED');
        // Signed by a stranger: 403.
        await expect(apiFor(stranger).submitJob(body)).rejects.toMatchObject({ code: 'E_FORBIDDEN' });
        seen.stranger = 403;
        // The requester's signature on an altered body (another input order): the signer no longer matches.
        const altered = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({ ...body, enc: bytesToHex(randomBytes(32)) }),
        });
        seen.altered = altered.status;
        // The real signed request as text/plain (what a web page can send without a preflight): 415.
        const csrf = await fetch(url, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'text/plain' },
          body: init.body as string,
        });
        seen.csrf = csrf.status;
        // Nothing changed: no job record on the node, the job still Open on chain.
        expect((await fetch(new URL(`/v1/jobs/${body.jobId}`, net.node.url))).status).toBe(404);
        const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
        expect((await getJob(reader, body.jobId)).status).toBe(JobStatus.Open);
      },
      () => runJob(jobOptions()),
    );
    expect(seen).toEqual({ unsigned: 401, stranger: 403, altered: 403, csrf: 415 });
    // The real requester's request then went through and the job ran.
    expect(r.jobId).toBe(jobId);
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
  });

  it('a stranger cannot close or drive a session: DELETE without the sealed close message is 401 and the session goes on', async () => {
    const captured: Uint8Array[] = [];
    let strangerOpen = 0;
    const session = await withFetchHook(
      '/requests',
      async (_url, init) => void captured.push(init.body as Uint8Array),
      async () => {
        // A stranger replaying the open request under its own signature first: 403, nothing opened.
        const s = await withFetchHook(
          '/v1/sessions',
          async (_url, init) => {
            const body = JSON.parse(String(init.body)) as {
              jobId: Hex;
              enc: Hex;
              ciphertext: string;
              inputs: Hex[];
            };
            await expect(apiFor(generatePrivateKey()).openSession(body)).rejects.toMatchObject({
              code: 'E_FORBIDDEN',
            });
            strangerOpen++;
            expect((await fetch(new URL(`/v1/jobs/${body.jobId}`, net.node.url))).status).toBe(404);
          },
          () =>
            openInferenceSession({
              ...requesterOptions(net, kem),
              model: { bytes: model.bytes },
              escrow: 10n ** 15n,
              // The POST route, so the test can tap the request (streams: tests/attacks/session-stream.test.ts).
              transport: 'http',
            }),
        );
        await s.infer({ x: { type: 'float32', dims: [1, 3], data: Float32Array.from([1, 2, 3]) } });
        return s;
      },
    );
    expect(captured).toHaveLength(1);
    expect(strangerOpen).toBe(1);
    const del = (headers: Record<string, string>) =>
      fetch(new URL(`/v1/sessions/${session.sessionId}`, net.node.url), { method: 'DELETE', headers });
    const attempts = [
      await del({}),
      await del({ 'x-firn-session-auth': Buffer.from(randomBytes(60)).toString('base64') }),
      // A captured request of this very session, replayed as a close: opens only once, so refused.
      await del({ 'x-firn-session-auth': Buffer.from(captured[0]!).toString('base64') }),
    ];
    for (const a of attempts) {
      expect(a.status).toBe(401);
      expect(((await a.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHENTICATED');
    }
    // A stranger's request message is refused by the enclave and does not disturb the session.
    const junk = await fetch(new URL(`/v1/sessions/${session.sessionId}/requests`, net.node.url), {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: randomBytes(64),
    });
    expect(junk.status).toBeGreaterThanOrEqual(400);
    expect(
      ((await (await fetch(new URL(`/v1/jobs/${session.jobId}`, net.node.url))).json()) as { status: string })
        .status,
    ).toBe('running');
    const out = await session.infer({
      x: { type: 'float32', dims: [2, 3], data: new Float32Array(6).fill(1) },
    });
    expect(out.y!.dims).toEqual([2, 2]);
    // A stranger's close racing the requester's neither blocks nor spoils it.
    const [raced, closed] = await Promise.all([
      del({ 'x-firn-session-auth': Buffer.from(randomBytes(60)).toString('base64') }),
      session.close(),
    ]);
    expect([401, 404]).toContain(raced.status);
    expect(closed.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(closed.requests).toBe(2);
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    expect((await getJob(reader, session.jobId)).status).toBe(JobStatus.Proved);
    expect((await del({ 'x-firn-session-auth': 'AAAA' })).status).toBe(404);
  });

  it('uploads need a signed intent from a funded address, octet-stream, and bytes that match it', async () => {
    const sealed = await sealInput(randomBytes(3000), 'application/octet-stream', kem.publicKey);
    const put = (headers: Record<string, string>, body: Uint8Array = sealed.sealed) =>
      fetch(new URL('/v1/artifacts', net.node.url), { method: 'PUT', headers, body });
    const before = await artifactFiles();
    const unsigned = await put({ 'content-type': 'application/octet-stream' });
    expect(unsigned.status).toBe(401);
    // A stranger with a valid signature but no balance on chain.
    const stranger = apiFor(generatePrivateKey());
    const unfunded = await put({
      'content-type': 'application/octet-stream',
      ...stranger.uploadIntentHeaders(sealed.sealed),
    });
    expect(unfunded.status).toBe(403);
    expect(((await unfunded.json()) as { error: { code: string } }).error.code).toBe('E_FORBIDDEN');
    const mine = apiFor(net.requester.privateKey);
    const intent = mine.uploadIntentHeaders(sealed.sealed);
    expect((await put({ ...intent, 'content-type': 'text/plain' })).status).toBe(415);
    // Other bytes of the same length under the requester's intent: refused, nothing stored.
    const other = Uint8Array.from(sealed.sealed);
    other[100]! ^= 1;
    expect((await put({ ...intent, 'content-type': 'application/octet-stream' }, other)).status).toBe(400);
    // An expired intent (signed, but for a time already past).
    const old = new NodeApi(net.node.url, 10_000, {
      requesterKey: net.requester.privateKey,
      scope: scope(),
      now: () => Math.floor(Date.now() / 1000) - 3600,
    });
    expect(
      (await put({ 'content-type': 'application/octet-stream', ...old.uploadIntentHeaders(sealed.sealed) }))
        .status,
    ).toBe(401);
    expect(await artifactFiles()).toEqual(before);
    // The requester's own upload goes through.
    expect(await mine.uploadArtifact(sealed.sealed)).toEqual({
      id: sealed.artifactId,
      size: sealed.sealed.length,
    });
  });

  it('quotas: over the uploader’s or the node’s disk quota is 413, too many uploads at once is 429', async () => {
    const jobs = net.node.jobs!;
    const mine = apiFor(net.requester.privateKey);
    const quotas = net.node.quotas;
    const saved = { ...quotas };
    const big = await sealInput(randomBytes(20_000), 'application/octet-stream', kem.publicKey);
    try {
      quotas.perAddressBytes = jobs.quota.usedBy(net.requester.address) + 10_000;
      await expect(mine.uploadArtifact(big.sealed)).rejects.toMatchObject({ code: 'E_QUOTA_EXCEEDED' });
      quotas.perAddressBytes = saved.perAddressBytes;
      quotas.totalBytes = jobs.quota.total + 10_000;
      const res = await fetch(new URL('/v1/artifacts', net.node.url), {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', ...mine.uploadIntentHeaders(big.sealed) },
        body: big.sealed,
      });
      expect(res.status).toBe(413);
      expect(jobs.artifacts.has(big.artifactId)).toBe(false);
    } finally {
      Object.assign(quotas, saved);
    }
    // Two uploads held open by one address take its two slots; a third is 429 with Retry-After.
    const held = await Promise.all(
      [0, 1].map(() => sealInput(randomBytes(50_000), 'application/octet-stream', kem.publicKey)),
    );
    const url = new URL('/v1/artifacts', net.node.url);
    const slow = held.map((s) => {
      const req = request(url, {
        method: 'PUT',
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(s.sealed.length),
          ...mine.uploadIntentHeaders(s.sealed),
        },
      });
      const done = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
      req.write(s.sealed.subarray(0, 1000));
      return { req, s, done };
    });
    await new Promise((r) => setTimeout(r, 300));
    const third = await sealInput(randomBytes(100), 'application/octet-stream', kem.publicKey);
    const busy = await fetch(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', ...mine.uploadIntentHeaders(third.sealed) },
      body: third.sealed,
    });
    expect(busy.status).toBe(429);
    expect(busy.headers.get('retry-after')).toBe('1');
    // The slow uploads, once finished, are stored; then the third goes through too.
    for (const u of slow) u.req.end(u.s.sealed.subarray(1000));
    expect(await Promise.all(slow.map((u) => u.done))).toEqual([201, 201]);
    expect(await mine.uploadArtifact(third.sealed)).toMatchObject({ id: third.artifactId });
  });

  it('connections over the per-IP cap are answered 429 with the JSON error body', async () => {
    const limits = net.node.limits;
    const saved = limits.maxConnectionsPerIp;
    const { port, hostname } = new URL(net.node.url);
    const open: Socket[] = [];
    try {
      limits.maxConnectionsPerIp = 3;
      for (let i = 0; i < 3; i++) {
        const s = connect(Number(port), hostname);
        await new Promise((r) => s.once('connect', r));
        open.push(s);
      }
      await new Promise((r) => setTimeout(r, 100));
      const extra = connect(Number(port), hostname);
      open.push(extra);
      const text = await new Promise<string>((resolve) => {
        let buf = '';
        extra.on('data', (d) => {
          buf += d.toString();
        });
        extra.on('close', () => resolve(buf));
      });
      expect(text).toMatch(/^HTTP\/1\.1 429 /);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({
        error: { code: 'E_RATE_LIMITED' },
      });
    } finally {
      for (const s of open) s.destroy();
      limits.maxConnectionsPerIp = saved;
    }
    await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(new URL('/healthz', net.node.url))).status).toBe(200);
  });
});

/** A JSON-RPC proxy to anvil that answers every isMeasurementAllowed call with true. */
async function lyingRpc(
  target: string,
  registry: Hex,
): Promise<{ url: string; server: Server; lies: () => number }> {
  const selector = toFunctionSelector('isMeasurementAllowed(uint8,bytes32)');
  let lies = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const msg = JSON.parse(text) as {
        id: number;
        method: string;
        params?: [{ to?: string; data?: string }];
      };
      const call = msg.params?.[0];
      if (
        msg.method === 'eth_call' &&
        call?.to?.toLowerCase() === registry.toLowerCase() &&
        call.data?.startsWith(selector)
      ) {
        lies++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: `0x${'0'.repeat(63)}1` }));
        return;
      }
      const up = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: text,
      });
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(await up.text());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, lies: () => lies };
}

describe('a revoked measurement gets no secrets, even through a lying RPC endpoint', () => {
  it('after governance revokes the measurement the SDK refuses the node before any upload; a lying RPC is caught by a second endpoint or the pinned list', async () => {
    await governBundleMeasurement(net, 'revoke');
    const before = await artifactFiles();
    // Honest RPC: refused at once, nothing uploaded.
    await expect(runJob(jobOptions())).rejects.toMatchObject({
      code: 'E_POLICY_REJECTED',
      message: expect.stringContaining('not allow-listed on chain'),
    });
    const liar = await lyingRpc(net.anvil.rpcUrl, net.deployment.registry);
    try {
      const now = Math.floor(Date.now() / 1000);
      const viaLiar = createFirnClients(liar.url, undefined, net.deployment);
      // The attack works against a requester that trusts one endpoint and pins nothing (dev policy):
      const fooled = await attestNode(viaLiar, { policy: DEV_POLICY, roots: net.roots, now });
      expect(fooled.measurement.toLowerCase()).toBe(net.bundleMeasurement.toLowerCase());
      expect(liar.lies()).toBeGreaterThan(0);
      // A second endpoint must agree at the same block: the lie is detected.
      const view = new AgreeingChainView([
        viaLiar,
        createFirnClients(net.anvil.rpcUrl, undefined, net.deployment),
      ]);
      await expect(
        attestNode(viaLiar, { policy: DEV_POLICY, roots: net.roots, now, chainView: view }),
      ).rejects.toMatchObject({ code: 'E_CHAIN_DISAGREEMENT' });
      await expect(
        runJob(jobOptions({ rpcUrl: liar.url, extraRpcUrls: [net.anvil.rpcUrl] })),
      ).rejects.toMatchObject({ code: 'E_CHAIN_DISAGREEMENT' });
      // One endpoint and a pinned allow-list that does not name this build: refused.
      await expect(
        attestNode(viaLiar, {
          policy: { ...DEV_POLICY, measurementAllowList: [bytesToHex(randomBytes(32))] },
          roots: net.roots,
          now,
        }),
      ).rejects.toMatchObject({
        code: 'E_POLICY_REJECTED',
        message: expect.stringContaining('pinned allow-list'),
      });
      // A production policy refuses to rest on one endpoint without a pinned list.
      await expect(attestNode(viaLiar, { policy: PRODUCTION_POLICY, now })).rejects.toMatchObject({
        code: 'E_POLICY_REJECTED',
        message: expect.stringContaining('single RPC endpoint'),
      });
    } finally {
      liar.server.close();
    }
    expect(await artifactFiles()).toEqual(before);
  });
});
