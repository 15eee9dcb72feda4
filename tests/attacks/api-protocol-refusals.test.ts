import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, NodeDaemon } from '@firn/node';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestBundle } from '../e2e/network.ts';

// A stranger on the node API (no keys) sends requests that Node's HTTP parser or the Hono adapter
// refuses before any route runs: headers over Node's 16 KiB cap, a header line without a colon, a
// Host header that is no host, and an `Upgrade` offer on an ordinary route (what `curl --http2`
// sends on http://). docs/api.md promises "every refusal is the usual JSON error body", and a
// stranger's mistake is a typed 4xx naming what was wrong. These answers were bare: a 431 or a
// 400 with no body at all, and `Upgrade: h2c` on GET /healthz a 404 "no such route" with no body.

let node: NodeDaemon;
let port: number;

beforeAll(async () => {
  const bundlePath = (await buildTestBundle('firn-atk-proto-')).path;
  const root = await createSimulatedRoot();
  const dir = mkdtempSync(join(tmpdir(), 'firn-atk-proto-'));
  const platformPath = join(dir, 'platform.json');
  writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(root)));
  // Serve-only (no chain): attestation, health, node info, the OpenAPI document.
  node = new NodeDaemon({
    dataDir: join(dir, 'node'),
    bundlePath,
    enclaveEnv: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger: createLogger({ component: 'node' }, { write: () => undefined }),
  });
  await node.start();
  port = Number(new URL(node.url).port);
}, 120_000);

afterAll(async () => {
  await node?.stop();
});

/** Raw bytes in, the whole answer out (the socket is closed by the server or after 3 s). */
function raw(text: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d.toString('latin1');
    });
    const done = () => {
      const at = out.indexOf('\r\n\r\n');
      const head = at < 0 ? out : out.slice(0, at);
      let body = at < 0 ? '' : out.slice(at + 4);
      if (/transfer-encoding: chunked/i.test(head)) {
        // One chunk at most here.
        const m = /^([0-9a-f]+)\r\n([\s\S]*)$/i.exec(body);
        body = m ? m[2]!.slice(0, Number.parseInt(m[1]!, 16)) : body;
      }
      resolve({ status: Number(head.split(' ')[1]), headers: head, body });
    };
    s.on('close', done);
    s.on('error', () => undefined);
    s.write(text);
    setTimeout(() => s.destroy(), 3_000).unref();
  });
}

/** The answer is the API's JSON error body; returns it. */
function jsonError(a: { headers: string; body: string }): { code: string; message: string } {
  expect(a.headers).toMatch(/content-type: application\/json/i);
  const o = JSON.parse(a.body) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof o.error?.code).toBe('string');
  expect(typeof o.error?.message).toBe('string');
  return o.error as { code: string; message: string };
}

describe('attack: requests refused before any route runs', () => {
  it('headers over the cap get 431 with the JSON error body naming the headers', async () => {
    const a = await raw(
      `GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`,
    );
    expect(a.status).toBe(431);
    const e = jsonError(a);
    expect(e.code).toBe('E_TOO_LARGE');
    expect(e.message).toMatch(/header/i);
  }, 30_000);

  it('a malformed header line gets 400 with the JSON error body', async () => {
    const a = await raw('GET /healthz HTTP/1.1\r\nHost: a\r\nBad Header\r\nConnection: close\r\n\r\n');
    expect(a.status).toBe(400);
    expect(jsonError(a).code).toBe('E_INVALID_INPUT');
  }, 30_000);

  it('a Host header that is no host gets 400 with the JSON error body naming Host', async () => {
    const a = await raw('GET /healthz HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n');
    expect(a.status).toBe(400);
    const e = jsonError(a);
    expect(e.code).toBe('E_INVALID_INPUT');
    expect(e.message).toMatch(/host/i);
  }, 30_000);

  it('an Upgrade offer on an ordinary route (curl --http2) is served, or refused naming Upgrade; never 404', async () => {
    const a = await raw(
      'GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n' +
        'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n',
    );
    expect(a.status).not.toBe(404);
    if (a.status !== 200) {
      expect(a.status).toBeGreaterThanOrEqual(400);
      expect(a.status).toBeLessThan(500);
      expect(jsonError(a).message).toMatch(/upgrade/i);
    }
  }, 30_000);

  it('an Upgrade to the session stream on a node without the job API, or by POST, gets the JSON error body', async () => {
    const id = `0x${'ab'.repeat(32)}`;
    for (const method of ['GET', 'POST']) {
      const a = await raw(
        `${method} /v1/sessions/${id}/stream HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: firn-session/1\r\n\r\n`,
      );
      expect(a.status).toBeGreaterThanOrEqual(400);
      expect(a.status).toBeLessThan(500);
      jsonError(a);
    }
  }, 30_000);

  it('an Expect header other than 100-continue gets 417 with the JSON error body naming Expect', async () => {
    const a = await raw('GET /healthz HTTP/1.1\r\nHost: a\r\nExpect: foo\r\nConnection: close\r\n\r\n');
    expect(a.status).toBe(417);
    expect(jsonError(a).message).toMatch(/expect/i);
  }, 30_000);

  it('the node still serves others afterwards', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/v1/node`);
    expect(r.status).toBe(200);
  }, 30_000);
});
