import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeApi, type RunJobOptions, runJob } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { generateKemKeyPair, nodeSubmissionDigest, signDigest, uploadIntentDigest } from '@firn/crypto';
import { createLogger, NodeDaemon } from '@firn/node';
import { createWalletClient, hexToBytes, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { openNetworkSession } from '../helpers/networkSession.ts';
import { requesterOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { rawHttp } from '../helpers/rawHttp.ts';

// Attacks by a stranger on the node API (no requester key, or a funded key that is not the job's
// owner). Every test asserts the secure behaviour, so an attack that lands is a failing test.
// Loads are bounded and aimed at 127.0.0.1 (and a few 127.0.0.x source addresses) only.
// Five landed before their fixes: /healthz showed the RPC URL's API key from viem's message
// (chainMonitor); a 2 MiB job body in one-byte chunks cost 780 MiB and 8 s of CPU (readBody); an
// upload intent for an artifact already stored had Node read up to 1 GiB of body outside every
// upload slot; and a returning requester was refused 429 once its cached "has sent a
// transaction" answer lapsed while strangers spent the node's stranger budget (decision 1741,
// second amendment). The other attacks held and stay as regression tests. The tests share one
// requester's job, made in the first test: run the file whole.

let net: TestNetwork;
let kem: { privateKey: Uint8Array; publicKey: Uint8Array };
/** A funded key that has sent a transaction (so it passes the "has sent a transaction" check), not the requester. */
let stranger: { address: Hex; privateKey: Hex };
/** Extra nodes started by single tests (stopped in afterAll). */
const extraNodes: NodeDaemon[] = [];
const extraDirs: string[] = [];

const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 7 });
const SECRET_INPUT = { x: { dims: [1, 3], type: 'float32', data: [0.1234567, 0.7654321, 0.3141592] } };

/** What the requester's job (run once, in the "claim someone else's job" test) left for the others. */
const done: {
  jobId?: Hex;
  inputs?: Hex[];
  outputIds?: Hex[];
  strangerStatuses?: Record<string, number>;
} = {};

beforeAll(async () => {
  net = await startTestNetwork();
  kem = await generateKemKeyPair();
  const acc = net.anvil.accounts[5]!;
  stranger = { address: acc.address as Hex, privateKey: acc.privateKey as Hex };
  // The stranger sends one transaction (any key on a real chain can), so the node's
  // "this signer never sent a transaction" short-cut does not refuse it first.
  const wallet = createWalletClient({
    account: privateKeyToAccount(stranger.privateKey),
    transport: http(net.anvil.rpcUrl),
  });
  await wallet.sendTransaction({
    to: stranger.address,
    value: 1n,
    chain: {
      id: net.deployment.chainId,
      name: 'anvil',
      nativeCurrency: { name: 'ETH', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [net.anvil.rpcUrl] } },
    },
  });
}, 180_000);

afterAll(async () => {
  for (const n of extraNodes) await n.stop().catch(() => undefined);
  for (const d of extraDirs) rmSync(d, { recursive: true, force: true });
  await net?.stop();
}, 120_000);

/** Raw HTTP/1.1 over one socket: everything the node wrote back before it closed (or `waitMs`). */
const raw = (port: number, bytes: Buffer | string, waitMs = 15_000) => rawHttp(port, bytes, { waitMs });

const portOf = (url: string) => Number(new URL(url).port);
const freshId = () => `0x${randomBytes(32).toString('hex')}` as Hex;
const scopeOf = (node: NodeDaemon) => ({
  chainId: net.deployment.chainId,
  jobMarket: net.deployment.jobMarket,
  enclaveId: node.identity!.enclaveId,
});

/** POST a signed job submission from `localAddress`; resolves with the status. */
function submitSigned(
  url: string,
  scope: ReturnType<typeof scopeOf>,
  key: Uint8Array,
  body: { jobId: Hex; enc: Hex; ciphertext: string; inputs: Hex[] },
  localAddress = '127.0.0.1',
  route: 'POST /v1/jobs' | 'POST /v1/sessions' = 'POST /v1/jobs',
): Promise<{ status: number; text: string }> {
  const sig = signDigest(key, nodeSubmissionDigest(route, scope, body));
  const text = JSON.stringify(body);
  return new Promise((res) => {
    const r = request(
      `${url}${route === 'POST /v1/jobs' ? '/v1/jobs' : '/v1/sessions'}`,
      {
        method: 'POST',
        localAddress,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
          'x-firn-signature': bytesToHex(sig),
        },
      },
      (resp) => {
        let t = '';
        resp.on('data', (d) => {
          t += d;
        });
        resp.on('end', () => res({ status: resp.statusCode ?? 0, text: t }));
      },
    );
    r.on('error', () => res({ status: 0, text: '' }));
    r.end(text);
  });
}

/** Start one more node daemon on the test network's bundle and simulated platform. */
async function extraNode(chain: Record<string, unknown>): Promise<NodeDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'firn-stranger-node-'));
  extraDirs.push(dir);
  const node = new NodeDaemon({
    dataDir: dir,
    bundlePath: net.node.opts.bundlePath,
    enclaveEnv: net.node.opts.enclaveEnv,
    logger: createLogger({ component: 'node' }, { write: () => undefined }),
    chain: chain as never,
  });
  extraNodes.push(node);
  await node.start();
  return node;
}

describe('a stranger tries to take or fail someone else’s job', () => {
  it("a funded stranger's own signature on the requester's posted job (job and session routes) is 403, and the requester's job still runs", async () => {
    const statuses: Record<string, number> = {};
    const realFetch = globalThis.fetch;
    let hooked = false;
    globalThis.fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      if (!hooked && String(url).endsWith('/v1/jobs') && init?.method === 'POST') {
        hooked = true;
        const body = JSON.parse(String(init.body)) as {
          jobId: Hex;
          enc: Hex;
          ciphertext: string;
          inputs: Hex[];
        };
        done.jobId = body.jobId;
        done.inputs = body.inputs;
        const key = hexToBytes(stranger.privateKey);
        // The requester's exact body, re-signed by the stranger: before the requester sends it.
        statuses.job = (await submitSigned(net.node.url, scopeOf(net.node), key, body)).status;
        // The same job as a session, signed by the stranger.
        statuses.session = (
          await submitSigned(
            net.node.url,
            scopeOf(net.node),
            key,
            { ...body, inputs: [body.inputs[0]!] },
            '127.0.0.1',
            'POST /v1/sessions',
          )
        ).status;
        // The stranger's own ciphertext for the requester's job.
        statuses.swapped = (
          await submitSigned(net.node.url, scopeOf(net.node), key, { ...body, ciphertext: 'AAAA' })
        ).status;
      }
      return realFetch(url, init);
    }) as typeof fetch;
    let r: Awaited<ReturnType<typeof runJob>>;
    try {
      const opts: RunJobOptions = {
        ...requesterOptions(net, kem),
        kind: 'inference',
        inputs: [
          { role: 'model', bytes: model.bytes, contentType: 'application/onnx' },
          {
            role: 'input',
            bytes: new TextEncoder().encode(JSON.stringify(SECRET_INPUT)),
            contentType: 'application/json',
          },
        ],
        params: {},
        escrow: 10n ** 15n,
      };
      r = await runJob(opts);
    } finally {
      globalThis.fetch = realFetch;
    }
    done.outputIds = r.outputIds;
    done.strangerStatuses = statuses;
    expect(statuses).toEqual({ job: 403, session: 403, swapped: 403 });
    expect(r.jobId).toBe(done.jobId);
    expect(r.reassignments).toEqual([]);
    expect(net.node.jobs!.jobs.get(r.jobId)?.status).toMatch(/^(proving|proved|finalized)$/);
  }, 120_000);

  it("the public answers about the requester's job (status, result, events, HEAD) never carry its input ids, plaintext or a stack", async () => {
    expect(done.jobId, 'needs the job of the test before').toBeDefined();
    await net.node.jobs!.settle(30_000);
    const base = `${net.node.url}/v1/jobs/${done.jobId}`;
    const texts: string[] = [];
    for (const path of ['', '/result', '/events']) {
      const ctl = new AbortController();
      const res = await fetch(`${base}${path}`, { signal: ctl.signal });
      // The events stream ends on its own for a final job; cut it after 3 s otherwise.
      const t = setTimeout(() => ctl.abort(), 3_000);
      texts.push(await res.text().catch(() => ''));
      clearTimeout(t);
    }
    const all = texts.join('\n').toLowerCase();
    for (const id of done.inputs!) expect(all).not.toContain(id.slice(2).toLowerCase());
    expect(all).not.toContain('0.1234567');
    expect(all).not.toMatch(/\bat .*\.(ts|js|mjs):\d+/);
    const status = JSON.parse(texts[0]!) as Record<string, unknown>;
    expect(
      Object.keys(status).every((k) =>
        ['jobId', 'status', 'error', 'outputs', 'proof', 'txs', 'claimExpiresAt', 'challengeEndsAt'].includes(
          k,
        ),
      ),
    ).toBe(true);
  }, 60_000);
});

describe('a stranger tries to hold, end or read someone else’s warm session', () => {
  it('without the transport token every session route is 401, 48 slowloris sockets change nothing, and the session keeps serving its requester', async () => {
    const session = await openNetworkSession(
      net,
      tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 5 }).bytes,
      {
        requesterKem: await generateKemKeyPair(),
        escrow: 10n ** 15n,
        transport: 'http',
      },
    );
    const port = portOf(net.node.url);
    const id = session.sessionId;
    const wrongToken = randomBytes(32).toString('base64url');
    const statusOf = (a: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(a)?.[1] ?? 0);
    const header = Buffer.alloc(64, 0); // a message-sized junk body
    const seen = {
      request: statusOf(
        await raw(
          port,
          Buffer.concat([
            Buffer.from(
              `POST /v1/sessions/${id}/requests HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\nConnection: close\r\n\r\n`,
            ),
            header,
          ]),
          10_000,
        ),
      ),
      wrongToken: statusOf(
        await raw(
          port,
          Buffer.concat([
            Buffer.from(
              `POST /v1/sessions/${id}/requests HTTP/1.1\r\nHost: a\r\nx-firn-session-token: ${wrongToken}\r\nContent-Type: application/octet-stream\r\nContent-Length: 64\r\nConnection: close\r\n\r\n`,
            ),
            header,
          ]),
          10_000,
        ),
      ),
      close: statusOf(
        await raw(
          port,
          `DELETE /v1/sessions/${id} HTTP/1.1\r\nHost: a\r\nx-firn-session-auth: ${Buffer.alloc(48).toString('base64')}\r\nConnection: close\r\n\r\n`,
          10_000,
        ),
      ),
      stream: statusOf(
        await raw(
          port,
          `GET /v1/sessions/${id}/stream HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: firn-session/1\r\nx-firn-session-token: ${wrongToken}\r\n\r\n`,
          5_000,
        ),
      ),
    };
    // Slowloris: 48 sockets from another loopback address that send half a request and stall.
    const held = Array.from({ length: 48 }, () => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () =>
        s.write(
          `POST /v1/sessions/${id}/requests HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\n`,
        ),
      );
      s.on('error', () => undefined);
      return s;
    });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const t0 = performance.now();
      const out = await session.infer({
        x: { type: 'float32', dims: [1, 3], data: new Float32Array([1, 2, 3]) },
      });
      const inferMs = performance.now() - t0;
      expect(seen).toEqual({ request: 401, wrongToken: 401, close: 401, stream: 401 });
      expect(Object.keys(out).length).toBeGreaterThan(0);
      expect(inferMs).toBeLessThan(5_000);
      expect(net.node.jobs!.jobs.get(id)?.status).toBe('running');
    } finally {
      for (const s of held) s.destroy();
    }
    const closed = await session.close();
    expect(closed.proofCheck.ok).toBe(true);
  }, 120_000);
});

describe("the node's error answers to a stranger", () => {
  it('malformed requests on every route are typed 4xx JSON errors naming the cause, never 5xx, a stack or an echo', async () => {
    const port = portOf(net.node.url);
    const id = `0x${'ab'.repeat(32)}`;
    const canary = 'CANARY-7f3a9-SECRET';
    const json = (method: string, path: string, body: string, extra = '') =>
      `${method} ${path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`;
    const cases: [string, string][] = [
      ['job body not JSON', json('POST', '/v1/jobs', `{"jobId": ${canary}`)],
      [
        'job body giant number',
        json(
          'POST',
          '/v1/jobs',
          `{"jobId":"${id}","enc":"${id}","ciphertext":"","inputs":["${id}"],"maxOutputBytes":1e999}`,
        ),
      ],
      [
        'job body number as id',
        json('POST', '/v1/jobs', `{"jobId":1e308,"enc":"${id}","ciphertext":"","inputs":["${id}"]}`),
      ],
      [
        'job body __proto__',
        json('POST', '/v1/jobs', `{"__proto__":{"jobId":"${id}"},"constructor":{"prototype":{"x":1}}}`),
      ],
      [
        'job body wrong types',
        json('POST', '/v1/jobs', `{"jobId":"${canary}","enc":[],"ciphertext":{},"inputs":"${canary}"}`),
      ],
      [
        'session body no signature',
        json(
          'POST',
          '/v1/sessions',
          `{"jobId":"${id}","enc":"${id}","ciphertext":"AAAA","inputs":["${id}"]}`,
        ),
      ],
      ['attestation short nonce', json('POST', '/v1/attestation', `{"nonce":"0x${canary}"}`)],
      ['attestation array', json('POST', '/v1/attestation', `[1,2,3]`)],
      ['status bad id', `GET /v1/jobs/${canary} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`],
      ['status bad escape', `GET /v1/jobs/%E0%A4%A HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`],
      [
        'events bad after',
        `GET /v1/jobs/${done.jobId ?? id}/events?after=${canary} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
      ],
      [
        'events huge last-event-id',
        `GET /v1/jobs/${done.jobId ?? id}/events HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 99999999999999999999999\r\nConnection: close\r\n\r\n`,
      ],
      ['artifact unknown', `GET /v1/artifacts/${id} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`],
      ['artifact head unknown', `HEAD /v1/artifacts/${id} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`],
      [
        'upload no intent',
        `PUT /v1/artifacts HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd`,
      ],
      [
        'upload bad intent',
        `PUT /v1/artifacts HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\nx-firn-uploader: ${canary}\r\nx-firn-artifact-id: ${canary}\r\nx-firn-intent-expires: 99999999999999999999\r\nx-firn-signature: 0x00\r\nConnection: close\r\n\r\nabcd`,
      ],
      [
        'upload chunked',
        `PUT /v1/artifacts HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n`,
      ],
      [
        'session request no session',
        `POST /v1/sessions/${id}/requests HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd`,
      ],
      [
        'session close no session',
        `DELETE /v1/sessions/${id} HTTP/1.1\r\nHost: a\r\nx-firn-session-auth: ${'A'.repeat(2000)}\r\nConnection: close\r\n\r\n`,
      ],
      ['unknown method', `PATCH /v1/jobs/${id} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`],
      ['bad host', `GET /v1/node HTTP/1.1\r\nHost: ${canary}@@/\\\r\nConnection: close\r\n\r\n`],
    ];
    const bad: string[] = [];
    for (const [name, req] of cases) {
      const answer = await raw(port, req);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
      const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
      const head = req.startsWith('HEAD');
      let code: string | undefined;
      try {
        code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
      } catch {}
      if (status < 400 || status >= 500) bad.push(`${name}: status ${status}`);
      if (!head && !/^E_[A-Z_]+$/.test(code ?? '')) bad.push(`${name}: untyped body ${body.slice(0, 120)}`);
      if (/\bat .*\.(ts|js|mjs):\d+/.test(body)) bad.push(`${name}: stack trace`);
      if (body.includes(canary)) bad.push(`${name}: echoes the request (${body.slice(0, 160)})`);
    }
    expect(bad).toEqual([]);
  }, 120_000);
});

/** POST /v1/jobs with a chunked body of 2 MiB - 64 one-byte chunks, each `c` (14 MB on the wire). */
function oneByteChunkedJobBody(c: string): Buffer {
  const one = Buffer.from(`1\r\n${c}\r\n`);
  return Buffer.concat([
    Buffer.from(
      'POST /v1/jobs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    ),
    Buffer.alloc(one.length * (2 * 1024 * 1024 - 64), one),
    Buffer.from('0\r\n\r\n'),
  ]);
}

describe('a stranger makes the node spend memory and CPU', () => {
  it('a 2 MiB job body sent as one-byte chunks (about 14 MB on the wire) does not cost the node over 256 MiB of memory', async () => {
    const port = portOf(net.node.url);
    const req = oneByteChunkedJobBody(' ');
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const t0 = performance.now();
    const answer = await raw(port, req, 60_000);
    const ms = performance.now() - t0;
    clearInterval(sample);
    const grewMiB = Math.round((peak - before) / 2 ** 20);
    // Refused as a client mistake either way.
    expect(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)).toBeGreaterThanOrEqual(400);
    expect(
      grewMiB,
      `node RSS grew by ${grewMiB} MiB for one request (answered after ${Math.round(ms)} ms)`,
    ).toBeLessThan(256);
  }, 120_000);

  it('the same one-byte-chunk body is refused after the pieces a 2 MiB body needs, not parsed whole (no seconds of CPU per request)', async () => {
    const port = portOf(net.node.url);
    const req = oneByteChunkedJobBody('{');
    const answer = await raw(port, req, 60_000);
    expect(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)).toBe(400);
    // Refused by its piece count (the 8 192 pieces a 2 MiB body may take), before the rest of
    // the 2 M pieces were taken one callback each.
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      error: { code: string; message: string };
    };
    expect(body.error.code).toBe('E_INVALID_INPUT');
    expect(body.error.message).toMatch(/^request body came in more than \d+ pieces/);
  }, 120_000);

  it('an upload intent for an artifact already stored (someone else’s output) is answered and the connection closed: the node does not go on reading a 1 GiB body without an upload slot', async () => {
    expect(done.outputIds?.length, 'needs the job of the first test').toBeGreaterThan(0);
    const target = done.outputIds![0]!;
    const size = 1024 ** 3;
    const scope = scopeOf(net.node);
    const intent = {
      uploader: stranger.address.toLowerCase() as Hex,
      artifactId: target,
      size,
      expiresAt: Math.floor(Date.now() / 1000) + 600,
    };
    const sig = signDigest(hexToBytes(stranger.privateKey), uploadIntentDigest(scope, intent));
    const head =
      `PUT /v1/artifacts HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n` +
      `x-firn-uploader: ${intent.uploader}\r\nx-firn-artifact-id: ${target}\r\nx-firn-intent-expires: ${intent.expiresAt}\r\n` +
      `x-firn-signature: ${bytesToHex(sig)}\r\n\r\n`;
    const result = await new Promise<{ answered: string; acceptedAfterAnswer: number }>((resolve) => {
      const s = connect(portOf(net.node.url), '127.0.0.1');
      let answered = '';
      let afterAnswer = 0;
      const chunk = Buffer.alloc(1 << 20);
      let stop = false;
      const finish = () => {
        if (stop) return;
        stop = true;
        s.destroy();
        resolve({ answered, acceptedAfterAnswer: afterAnswer });
      };
      s.on('error', finish);
      s.on('close', finish);
      s.on('data', (d) => {
        if (answered === '') setTimeout(finish, 3_000).unref();
        answered += d.toString('latin1');
      });
      const pump = () => {
        while (!stop) {
          if (answered !== '') afterAnswer += chunk.length;
          if (afterAnswer > 256 * 2 ** 20) return finish();
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      s.on('connect', () => {
        s.write(head);
        pump();
      });
      setTimeout(finish, 30_000).unref();
    });
    expect(result.answered).toMatch(/^HTTP\/1\.1 200/);
    const mib = Math.round(result.acceptedAfterAnswer / 2 ** 20);
    expect(mib, `the node read ${mib} MiB more of the body after answering`).toBeLessThan(32);
  }, 60_000);
});

describe('a stranger learns the operator’s secrets', () => {
  it("GET /healthz never shows the RPC URL's API key when the chain is unreachable", async () => {
    const key = 'Zq7RpcSecretKey0123456789abcdef';
    const node = await extraNode({
      // Nothing listens on port 9: every head read fails.
      rpcUrl: `http://127.0.0.1:9/v2/${key}`,
      deployment: net.deployment,
      operatorKey: net.operator.privateKey,
    });
    const texts: string[] = [];
    for (const path of ['/healthz', '/v1/node', '/metrics', '/v1/openapi.json']) {
      const r = await fetch(`${node.url}${path}`);
      texts.push(`${path}: ${await r.text()}`);
    }
    const leaked = texts.filter((t) => t.includes(key)).map((t) => t.slice(0, 300));
    expect(leaked).toEqual([]);
  }, 60_000);
});

describe('strangers spend the chain-read budget of a returning requester', () => {
  it("a requester known to the node is not refused 429 once its cached 'has sent a transaction' answer lapses (TTL shortened to 2 s here, 10 min by default) while 10 addresses send junk", async () => {
    const node = await extraNode({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      operatorKey: net.operator.privateKey,
      // Stands for the default 10 minutes: the attack needs only that the entry lapse once.
      strangerReads: { positiveTtlMs: 2_000 },
    });
    const scope = scopeOf(node);
    // A requester with history (the deployer has sent transactions), independent of test order.
    const requester = hexToBytes(net.deployer.privateKey);
    const junk = () => ({
      jobId: freshId(),
      enc: freshId(),
      ciphertext: 'AAAA',
      inputs: [freshId()],
    });
    const uploader = new NodeApi(node.url, 10_000, { requesterKey: net.deployer.privateKey, scope });
    const upload = () =>
      uploader.uploadArtifact(new Uint8Array(randomBytes(64))).then(
        () => 201,
        (e: { code?: string }) => e.code ?? 'error',
      );
    // The requester is known: it submitted here before (no such job: 404, its signer is cached)
    // and uploaded (its balance is cached).
    const first = await submitSigned(node.url, scope, requester, junk());
    expect(first.status, first.text).toBe(404);
    expect(await upload()).toBe(201);
    await new Promise((r) => setTimeout(r, 2_500));
    // The stranger: 10 loopback addresses, 10 junk submissions each, a fresh throwaway key each.
    const throwaway = () => {
      const k = new Uint8Array(randomBytes(32));
      k[0] = 1;
      return k;
    };
    const floods: Promise<{ status: number }>[] = [];
    for (let a = 2; a <= 11; a++)
      for (let i = 0; i < 10; i++)
        floods.push(submitSigned(node.url, scope, throwaway(), junk(), `127.0.0.${a}`));
    await Promise.all(floods);
    const after = await submitSigned(node.url, scope, requester, junk());
    const uploadAfter = await upload();
    expect(
      { submit: after.status, upload: uploadAfter },
      `the returning requester got ${after.status} ${after.text}`,
    ).toEqual({ submit: 404, upload: 201 });
  }, 60_000);
});
