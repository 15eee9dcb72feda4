import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bytesToHex, type FirnError, type Hex } from '@firn/core';
import {
  createSessionEndpoint,
  deriveSessionKeys,
  SESSION_FORMAT,
  SESSION_SALT_BYTES,
  SESSION_STATUS,
  type SessionEndpoint,
} from '@firn/crypto';
import { encodeTensorsBinary } from '@firn/ml/formats';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeApi } from './nodeApi.ts';
import { SessionCodec } from './openInferenceSession.ts';
import { postSessionRequest } from './sessionPost.ts';

// The POST fallback's re-sends (docs/decisions/1530-session-post-retries.md) against a host whose
// "enclave" is a real session endpoint under the session keys: it opens each request it is handed
// under its authenticated sequence number (a copy of one it took is refused, E_CHANNEL_SEQUENCE)
// and seals a real answer. What the host does before or after that is scripted per attempt.

type Step = 'process' | 'drop-before' | 'drop-after' | { status: 429 | 503; retryAfter?: string } | 'silent';

interface FakeHost {
  api: NodeApi;
  /** The bodies the host received, in order. */
  bodies: Buffer[];
  /** Requests the "enclave" opened and answered (what must never exceed one per request). */
  processed: number;
  server: Server;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function fakeHost(enclave: SessionEndpoint, script: Step[]): Promise<FakeHost> {
  const host = { bodies: [] as Buffer[], processed: 0 } as FakeHost;
  const answer = (res: ServerResponse, status: number, code: string, message: string, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { code, message } }));
  };
  const enclaveAnswer = (body: Buffer): { ok: Uint8Array } | { error: FirnError } => {
    try {
      enclave.open(body);
    } catch (e) {
      return { error: e as FirnError };
    }
    host.processed++;
    const pt = encodeTensorsBinary(
      { y: { type: 'float32', dims: [1], data: Float32Array.of(host.processed) } },
      2,
    );
    pt[0] = SESSION_STATUS.ok;
    pt[1] = SESSION_FORMAT.binary;
    return { ok: enclave.seal(pt) };
  };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    host.bodies.push(body);
    const step = script.shift() ?? 'process';
    if (step === 'silent') return;
    if (step === 'drop-before') {
      req.socket.destroy();
      return;
    }
    if (typeof step === 'object') {
      answer(res, step.status, step.status === 429 ? 'E_RATE_LIMITED' : 'E_ENCLAVE_UNAVAILABLE', 'busy', {
        ...(step.retryAfter === undefined ? {} : { 'retry-after': step.retryAfter }),
      });
      return;
    }
    const r = enclaveAnswer(body);
    if (step === 'drop-after') {
      req.socket.destroy();
      return;
    }
    if ('error' in r) answer(res, 422, r.error.code, r.error.message);
    else {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(r.ok);
    }
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host.server = server;
  host.api = new NodeApi(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 5_000);
  return host;
}

function session() {
  const secret = new Uint8Array(randomBytes(32));
  const salt = new Uint8Array(randomBytes(SESSION_SALT_BYTES));
  const id = bytesToHex(randomBytes(32)) as Hex;
  return {
    id,
    codec: new SessionCodec(secret, salt, id),
    enclave: createSessionEndpoint('enclave', deriveSessionKeys(secret, salt, id), id),
  };
}

const x = { x: { type: 'float32' as const, dims: [1, 2], data: Float32Array.of(1, 2) } };

describe('session POST fallback: refusals that prove the enclave never saw the request', () => {
  it('429 (Retry-After honoured) then 200: the same sealed frame is re-sent, answered once, and the session goes on', async () => {
    const s = session();
    const host = await fakeHost(s.enclave, [{ status: 429, retryAfter: '1' }, 'process', 'process']);
    const waits: number[] = [];
    const sleep = async (ms: number) => void waits.push(ms);
    const req1 = s.codec.sealRequest(x);
    const out = await postSessionRequest(host.api, s.id, req1, { timeoutMs: 5_000, sleep });
    expect((s.codec.openResponse(req1, out).y!.data as Float32Array)[0]).toBe(1);
    expect(waits).toEqual([1000]);
    expect(host.bodies.length).toBe(2);
    expect(host.bodies[1]!.equals(host.bodies[0]!)).toBe(true);
    expect(host.bodies[0]!.equals(Buffer.from(req1))).toBe(true);
    expect(host.processed).toBe(1);
    // The session survived: its next request is answered under the next sequence number.
    const req2 = s.codec.sealRequest(x);
    const out2 = await postSessionRequest(host.api, s.id, req2, { timeoutMs: 5_000, sleep });
    expect((s.codec.openResponse(req2, out2).y!.data as Float32Array)[0]).toBe(2);
    expect(s.codec.workUnits).toBe(4n);
  });

  it('503s: bounded re-sends, Retry-After capped, backoff without one; then the refusal is raised', async () => {
    const s = session();
    const host = await fakeHost(s.enclave, [
      { status: 503, retryAfter: '3600' },
      { status: 503 },
      { status: 429 },
      { status: 503 },
      'process',
    ]);
    const waits: number[] = [];
    const req = s.codec.sealRequest(x);
    await expect(
      postSessionRequest(host.api, s.id, req, {
        timeoutMs: 60_000,
        sleep: async (ms) => void waits.push(ms),
      }),
    ).rejects.toMatchObject({ code: 'E_ENCLAVE_UNAVAILABLE', details: { httpStatus: 503 } });
    expect(waits).toEqual([5_000, 400, 800]);
    expect(host.bodies.length).toBe(4);
    expect(host.processed).toBe(0);
  });
});

describe('session POST fallback: a connection that dropped (ambiguous)', () => {
  it('dropped before the enclave took it: re-sent once, answered once', async () => {
    const s = session();
    const host = await fakeHost(s.enclave, ['drop-before', 'process']);
    const req = s.codec.sealRequest(x);
    const out = await postSessionRequest(host.api, s.id, req, { timeoutMs: 5_000 });
    expect((s.codec.openResponse(req, out).y!.data as Float32Array)[0]).toBe(1);
    expect(host.bodies.map((b) => b.equals(Buffer.from(req)))).toEqual([true, true]);
    expect(host.processed).toBe(1);
  });

  it('dropped after the enclave took it: the copy is refused as a replay, never run twice, and the error says the answer is lost', async () => {
    const s = session();
    const host = await fakeHost(s.enclave, ['drop-after', 'process', 'process']);
    const req = s.codec.sealRequest(x);
    const err = await postSessionRequest(host.api, s.id, req, { timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNAVAILABLE', details: { answerLost: true } });
    expect((err as Error).message).toMatch(/answer is lost.*open a new session/);
    expect(host.bodies.length).toBe(2);
    expect(host.processed).toBe(1);
  });

  it('a second drop is not re-sent again (one re-send at most)', async () => {
    const s = session();
    const host = await fakeHost(s.enclave, ['drop-before', 'drop-before', 'process']);
    await expect(
      postSessionRequest(host.api, s.id, s.codec.sealRequest(x), { timeoutMs: 5_000 }),
    ).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    expect(host.bodies.length).toBe(2);
    expect(host.processed).toBe(0);
  });
});

describe('session POST fallback: bounded', () => {
  it('a host that takes the request and never answers: E_TIMEOUT naming requestTimeoutMs, not re-sent', async () => {
    const s = session();
    const host = await fakeHost(s.enclave, ['silent', 'process']);
    const t0 = performance.now();
    const err = await postSessionRequest(host.api, s.id, s.codec.sealRequest(x), { timeoutMs: 300 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'E_TIMEOUT' });
    expect((err as Error).message).toMatch(/requestTimeoutMs/);
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(host.bodies.length).toBe(1);
  });

  it('a host that dribbles its answer one byte at a time: E_TIMEOUT all the same', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
        const t = setInterval(() => res.write(Buffer.of(0)), 100);
        res.on('close', () => clearInterval(t));
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const api = new NodeApi(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 5_000);
    const s = session();
    await expect(
      postSessionRequest(api, s.id, s.codec.sealRequest(x), { timeoutMs: 400 }),
    ).rejects.toMatchObject({ code: 'E_TIMEOUT' });
  });
});

describe('openInferenceSession requestTimeoutMs', () => {
  it('refuses a deadline that is not an integer of 1..2^31-1 ms before anything is done', async () => {
    const { openInferenceSession } = await import('./openInferenceSession.ts');
    for (const requestTimeoutMs of [0, -1, 1.5, Number.NaN, 2 ** 31])
      await expect(
        openInferenceSession({ requestTimeoutMs } as unknown as Parameters<typeof openInferenceSession>[0]),
      ).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
        message: expect.stringMatching(/requestTimeoutMs/),
      });
  });
});
