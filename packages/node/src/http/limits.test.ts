import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { QuotaLedger, STORAGE_BLOCK_BYTES as K } from '../storage/quota.ts';
import {
  applyHttpLimits,
  DEFAULT_HTTP_LIMITS,
  type HttpLimits,
  clientKey,
  holdWhileServing,
  FairInFlightCap,
  ipPrefix,
  RequestRateLimiter,
  type UploadHolder,
  UploadSlots,
} from './limits.ts';
import { readJson, Router } from './router.ts';

// The limits on a real HTTP server: a slow but steady upload outlives any fixed deadline, a
// stalled one is cut by the idle timeout; rate, concurrency and quota refusals are typed.
let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server?.closeAllConnections();
  server = undefined;
});

async function serve(idleTimeoutMs: number, extra: Partial<HttpLimits> = {}): Promise<string> {
  const router = new Router();
  router.add('GET', '/ok', () => ({ ok: true }));
  // The node busy elsewhere before it reads the body (a chain call): the client is not the slow side.
  router.add('PUT', '/late', async ({ req }) => {
    await new Promise((r) => setTimeout(r, 1_200));
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) n += c.length;
    return { received: n };
  });
  router.add('PUT', '/upload', async ({ req }) => {
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) n += c.length;
    return { received: n };
  });
  router.add('POST', '/json', async ({ req }) => readJson(req, 1024));
  // The node working for longer than the idle timeout after the body is read (a chain tx, a model load).
  router.add('POST', '/slow', async ({ req, url }) => {
    await readJson(req, 1024);
    if (url.searchParams.get('hold') === '1') holdWhileServing(req);
    await new Promise((r) => setTimeout(r, 1000));
    return { ok: true };
  });
  const logger = createLogger({ component: 'test' }, { level: 'error', write: () => {} });
  server = createServer((req, res) => void router.handle(req, res, logger));
  applyHttpLimits(server, { ...DEFAULT_HTTP_LIMITS, idleTimeoutMs, headersTimeoutMs: 2_000, ...extra });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

/** PUT `chunks` chunks of `size` bytes, one every `everyMs`; resolves with the status or 'reset'. */
function dribble(
  url: string,
  chunks: number,
  size: number,
  everyMs: number,
  stallAfter?: number,
  path = '/upload',
) {
  return new Promise<number | 'reset'>((resolve) => {
    const req = request(`${url}${path}`, {
      method: 'PUT',
      headers: { 'content-length': String(chunks * size), 'content-type': 'application/octet-stream' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve('reset'));
    let sent = 0;
    const tick = () => {
      if (stallAfter !== undefined && sent === stallAfter) return; // stop sending, keep the socket open
      req.write(Buffer.alloc(size, 1));
      sent++;
      if (sent < chunks) setTimeout(tick, everyMs);
      else req.end();
    };
    tick();
  });
}

describe('HTTP limits', () => {
  it('a slow, steady upload longer than several idle timeouts finishes; a stalled one is cut', async () => {
    const url = await serve(400);
    const t0 = Date.now();
    // 16 chunks, one per 150 ms: 2.4 s in all, six times the idle timeout, never idle for 400 ms.
    expect(await dribble(url, 16, 64 * 1024, 150)).toBe(200);
    expect(Date.now() - t0).toBeGreaterThan(2000);
    // The same upload stalling after 3 chunks is cut within about the idle timeout.
    const t1 = Date.now();
    expect(await dribble(url, 16, 64 * 1024, 50, 3)).toBe('reset');
    expect(Date.now() - t1).toBeLessThan(3000);
  });

  it('a request the node works on longer than the idle timeout survives when held; the next request is timed again', async () => {
    const url = await serve(400);
    const post = (hold: boolean) =>
      fetch(`${url}/slow?hold=${hold ? 1 : 0}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }).then(
        (r) => r.status,
        () => 'reset',
      );
    expect(await post(true)).toBe(200);
    expect(await post(false)).toBe('reset');
  });

  it('JSON is read only from application/json: text/plain is 415, a huge declared body 413 before the type', async () => {
    const url = await serve(5_000);
    const post = (ct: string | undefined, body: string) =>
      fetch(`${url}/json`, { method: 'POST', headers: ct ? { 'content-type': ct } : {}, body });
    const plain = await post('text/plain', '{"a":1}');
    expect(plain.status).toBe(415);
    expect(await plain.json()).toMatchObject({ error: { code: 'E_UNSUPPORTED' } });
    expect((await post('application/x-www-form-urlencoded', 'a=1')).status).toBe(415);
    expect((await post('application/json; charset=utf-8', '{"a":1}')).status).toBe(200);
    expect((await post('text/plain', 'x'.repeat(5000))).status).toBe(413);
  });

  it('rate limiter and upload slots refuse with E_RATE_LIMITED and a retry hint', async () => {
    const rl = new RequestRateLimiter(3);
    for (let i = 0; i < 3; i++) await rl.take('1.2.3.4');
    await expect(rl.take('1.2.3.4')).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      details: { retryAfterSeconds: 1 },
    });
    await rl.take('5.6.7.8');
    const slots = new UploadSlots(3, 2);
    const a1 = slots.tryAcquire('0xA');
    slots.tryAcquire('0xa');
    expect(() => slots.tryAcquire('0xA')).toThrow(/2 uploads in progress/);
    slots.tryAcquire('0xb');
    expect(() => slots.tryAcquire('0xc')).toThrow(/3 uploads in progress/);
    a1();
    a1(); // releasing twice frees one slot only
    slots.tryAcquire('0xc');
    expect(() => slots.tryAcquire('0xd')).toThrow(/3 uploads in progress/);
  });

  it('quota ledger: per-address and total caps, reservations released on failure, usage persisted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-quota-'));
    mkdirSync(join(dir, 'artifacts'));
    writeFileSync(join(dir, 'artifacts', 'x'), Buffer.alloc(100));
    const A = `0x${'aa'.repeat(20)}`;
    const B = `0x${'bb'.repeat(20)}`;
    const quotas = { perAddressBytes: 10 * K, totalBytes: 15 * K };
    const q = new QuotaLedger(dir, join(dir, 'artifacts'), quotas);
    // A stored file is charged in whole blocks: 100 bytes take one.
    expect(q.total).toBe(K);
    const r1 = q.reserve(A.toUpperCase().replace('0X', '0x'), 8 * K);
    expect(() => q.reserve(A, 3 * K)).toThrow(expect.objectContaining({ code: 'E_QUOTA_EXCEEDED' }));
    r1.release();
    q.reserve(A, 9 * K).commit(true);
    expect(q.usedBy(A.toUpperCase().replace('0X', '0x'))).toBe(9 * K);
    expect(() => q.reserve(B, 6 * K)).toThrow(/node over its storage quota/);
    q.reserve(B, 4 * K).commit(false); // a duplicate: not charged
    expect(q.usedBy(B)).toBe(0);
    const again = new QuotaLedger(dir, join(dir, 'artifacts'), quotas);
    expect(again.usedBy(A)).toBe(9 * K);
    // One byte is charged a whole block, so ten 1-byte files fill a ten-block quota.
    const C = `0x${'cc'.repeat(20)}`;
    const small = new QuotaLedger(dir, join(dir, 'artifacts'), {
      perAddressBytes: 10 * K,
      totalBytes: 100 * K,
    });
    for (let i = 0; i < 10; i++) small.reserve(C, 1).commit(true);
    expect(small.usedBy(C)).toBe(10 * K);
    expect(() => small.reserve(C, 1)).toThrow(/1 bytes, charged as 4096: whole 4096-byte blocks/);
  });

  it('quota refusals name the limit and the option that raises it; job outputs are checked against the total', () => {
    const dir = mkdtempSync(join(tmpdir(), 'firn-quota-'));
    mkdirSync(join(dir, 'artifacts'));
    const A = `0x${'aa'.repeat(20)}`;
    const q = new QuotaLedger(dir, join(dir, 'artifacts'), { perAddressBytes: 10 * K, totalBytes: 15 * K });
    const refusal = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as { code: string; message: string; details: Record<string, unknown> };
      }
      throw new Error('not refused');
    };
    const e1 = refusal(() => q.reserve(A, 10 * K + 1, 'input artifact 0x01'));
    expect(e1.code).toBe('E_QUOTA_EXCEEDED');
    expect(e1.message).toMatch(
      /^input artifact 0x01 \(40961 bytes, charged as 45056: whole 4096-byte blocks\).*quota of 40960 bytes.*quotas\.perAddressBytes/,
    );
    expect(e1.details).toMatchObject({ limit: 10 * K, quota: 'perAddressBytes' });
    q.reserve(A, 10 * K).commit(true);
    // A job output of 6 blocks would cross the node's 15: refused; 5 fit and are counted.
    const e2 = refusal(() => q.checkTotal(6 * K, 'the job output result'));
    expect(e2.code).toBe('E_QUOTA_EXCEEDED');
    expect(e2.message).toMatch(/the job output result.*quotas\.totalBytes/);
    expect(e2.details).toMatchObject({ limit: 15 * K, used: 10 * K, quota: 'totalBytes' });
    q.checkTotal(5 * K);
    q.addStored(5 * K);
    expect(q.total).toBe(15 * K);
    expect(() => q.checkTotal(1)).toThrow(/over its storage quota of 61440 bytes/);
  });

  it('a trickle that is never idle is cut once the grace is over; an upload at a normal rate and a node slow to read are not', async () => {
    // Grace 300 ms, then at least 16 KiB per 200 ms window (80 KiB/s).
    const url = await serve(5_000, {
      bodyGraceMs: 300,
      bodyRateWindowMs: 200,
      minBodyBytesPerWindow: 16 * 1024,
    });
    const t0 = Date.now();
    // One byte every 100 ms: far under the idle timeout, far under the rate.
    expect(await dribble(url, 100, 1, 100)).toBe('reset');
    expect(Date.now() - t0).toBeLessThan(2_000);
    // 64 KiB every 150 ms for 2.4 s (about 430 KiB/s): eight windows past the grace, never cut.
    expect(await dribble(url, 16, 64 * 1024, 150)).toBe(200);
    // The whole body is sent at once but the node reads it only after 1.2 s: not the client's fault.
    expect(await dribble(url, 1, 4096, 0, undefined, '/late')).toBe(200);
  });

  it('when every connection slot is taken, a newcomer evicts a connection of the network holding the most, not of another', async () => {
    const url = await serve(10_000, { maxConnections: 6 });
    const port = Number(new URL(url).port);
    const open = (host: string) =>
      new Promise<Socket>((resolve) => {
        const s = connect({ port, host: '127.0.0.1', localAddress: host });
        s.on('error', () => undefined);
        s.once('connect', () => {
          s.write('GET /ok HTTP/1.1\r\nHost: x\r\n'); // headers never finished
          resolve(s);
        });
      });
    const closed = (s: Socket) => s.destroyed || s.readableEnded;
    const mine = [await open('127.0.0.1'), await open('127.0.0.1')];
    // One network (127.0.1.0/24), several addresses in it, holding the rest of the slots.
    const theirs = [];
    for (const a of ['127.0.1.2', '127.0.1.3', '127.0.1.4', '127.0.1.5']) theirs.push(await open(a));
    await new Promise((r) => setTimeout(r, 1_200));
    const status = await new Promise<number>((resolve) => {
      const r = request(`${url}/ok`, { localAddress: '127.0.2.9', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', () => resolve(0));
      r.end();
    });
    expect(status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(theirs.filter(closed).length).toBeGreaterThanOrEqual(1);
    expect(mine.filter(closed)).toHaveLength(0);
    for (const s of [...mine, ...theirs]) s.destroy();
  });

  it('groups addresses by /24 and /64, and caps upload slots per network', () => {
    expect(ipPrefix('10.1.2.3')).toBe('10.1.2.0/24');
    expect(ipPrefix('::ffff:10.1.2.200')).toBe('10.1.2.0/24');
    expect(ipPrefix('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(ipPrefix('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipPrefix('2001:db8::1')).toBe(ipPrefix('2001:0db8:0000:0000:ffff::9'));
    const slots = new UploadSlots(8, 2, 4);
    const held = ['0x1', '0x2', '0x3', '0x4'].map((a) => slots.tryAcquire(a, '10.1.2.0/24'));
    expect(() => slots.tryAcquire('0x5', '10.1.2.0/24')).toThrow(/from this network/);
    const other = slots.tryAcquire('0x5', '10.9.9.0/24');
    held[0]!();
    slots.tryAcquire('0x6', '10.1.2.0/24');
    other();
  });
});

describe('per-client keys, the attestation cap and upload eviction (decisions 1660, 1661)', () => {
  it('keys an IPv4 address on itself and an IPv6 address on its /64', async () => {
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:ffff:1:2:3')).toBe(clientKey('2001:0db8:0001:0002::1'));
    expect(clientKey(clientKey('2001:db8:1:2::9'))).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:3::9')).not.toBe(clientKey('2001:db8:1:2::9'));
    // One budget for the whole /64: a fresh address per request gets nothing more.
    const rl = new RequestRateLimiter(3);
    for (let i = 1; i <= 3; i++) await rl.take(`2001:db8:1:2::${i}`);
    await expect(rl.take('2001:db8:1:2:abcd::1')).rejects.toMatchObject({ code: 'E_RATE_LIMITED' });
    await rl.take('2001:db8:1:3::1');
    // IPv4 neighbours are separate clients.
    for (let i = 0; i < 3; i++) await rl.take('10.1.2.3');
    await rl.take('10.1.2.4');
  });

  it('caps work in flight over all clients and gives a place back once', async () => {
    const cap = new FairInFlightCap(2, 2, 'attestations', {
      maxWaitingPerClient: 0,
      maxWaiting: 0,
      maxWaitMs: 10,
    });
    const a = await cap.enter('10.0.0.1');
    await cap.enter('10.0.0.1');
    await expect(cap.enter('10.0.0.2')).rejects.toThrow(/producing 2 attestations already/);
    a();
    a();
    expect(cap.inFlight).toBe(1);
    await cap.enter('10.0.0.2');
    await expect(cap.enter('10.0.0.3')).rejects.toMatchObject({ code: 'E_RATE_LIMITED' });
  });

  it("one client never holds every place: its extra requests wait, and another client's request is served first", async () => {
    const cap = new FairInFlightCap(4, 2, 'attestations');
    const order: string[] = [];
    const enter = (c: string, tag: string) =>
      cap.enter(c).then((leave) => {
        order.push(tag);
        return leave;
      });
    // The stranger sends four at once: two places, two waiting for its own places.
    const s1 = enter('10.0.0.9', 's1');
    const s2 = enter('10.0.0.9', 's2');
    const s3 = enter('10.0.0.9', 's3');
    const s4 = enter('10.0.0.9', 's4');
    await Promise.resolve();
    expect([cap.inFlight, cap.queued]).toEqual([2, 2]);
    // A fifth from the stranger is refused at once (two waiting already).
    await expect(cap.enter('10.0.0.9')).rejects.toThrow(/2 attestations in progress and 2 waiting/);
    // Another client gets a free place at once, the stranger's waiting requests notwithstanding.
    const v = await enter('10.0.0.1', 'v');
    const w = await enter('10.0.0.2', 'w');
    expect(cap.inFlight).toBe(4);
    // Every place held: a third client waits, and is served before the stranger's waiting ones.
    const x = enter('10.0.0.3', 'x');
    (await s1)();
    await x;
    expect(order).toEqual(['s1', 's2', 'v', 'w', 'x']);
    (await s2)();
    (await s3)();
    (await s4)();
    v();
    w();
    (await x)();
    expect([cap.inFlight, cap.queued]).toEqual([0, 0]);
    expect(order).toEqual(['s1', 's2', 'v', 'w', 'x', 's3', 's4']);
  });

  it('a request that finds no place within the wait is refused, and leaves the queue', async () => {
    const cap = new FairInFlightCap(1, 1, 'attestations', {
      maxWaitingPerClient: 1,
      maxWaiting: 1,
      maxWaitMs: 20,
    });
    const leave = await cap.enter('10.0.0.1');
    await expect(cap.enter('10.0.0.2')).rejects.toThrow(/none ended within 20 ms/);
    expect(cap.queued).toBe(0);
    // The queue is full over all clients: refused at once.
    const waiting = cap.enter('10.0.0.2');
    await expect(cap.enter('10.0.0.3')).rejects.toThrow(/producing 1 attestations already/);
    leave();
    (await waiting)();
    expect(cap.inFlight).toBe(0);
  });

  it('a full queue: a client holding nothing takes the first waiting place of the client with the most; its youngest is refused 429', async () => {
    const cap = new FairInFlightCap(1, 1, 'attestations', {
      maxWaitingPerClient: 2,
      maxWaiting: 3,
      maxWaitMs: 5_000,
    });
    const order: string[] = [];
    const enter = (client: string, tag: string) =>
      cap.enter(client).then((leave) => {
        order.push(tag);
        return leave;
      });
    const holder = await cap.enter('h');
    const a1 = enter('a', 'a1');
    const a2 = enter('a', 'a2');
    const b1 = enter('b', 'b1');
    // 'a' holds most (2 waiting): its youngest is refused, the verifier takes its first place.
    const v = enter('v', 'v');
    await expect(a2).rejects.toMatchObject({
      code: 'E_RATE_LIMITED',
      details: { retryAfterSeconds: 1 },
      message: expect.stringMatching(/address holding none/),
    });
    // Now every client has one request in all: a newcomer would only trade places, so it is refused.
    await expect(cap.enter('c')).rejects.toMatchObject({ code: 'E_RATE_LIMITED' });
    expect(cap.queued).toBe(3);
    holder();
    (await v)();
    (await a1)();
    (await b1)();
    expect(order).toEqual(['v', 'a1', 'b1']);
    expect([cap.inFlight, cap.queued]).toEqual([0, 0]);
  });

  /** An upload of `rate` bytes/s since `since` on the test clock; `done` makes it unevictable. */
  function upload(clock: { t: number }, since: number, rate: number, done = false) {
    const u = {
      evictedWith: undefined as string | undefined,
      holder: {
        received: () => ((clock.t - since) * rate) / 1000,
        evict: (reason: string) => {
          if (done) return false;
          u.evictedWith = reason;
          return true;
        },
      } satisfies UploadHolder,
    };
    return u;
  }

  it('a newcomer finding every slot held evicts the slowest upload of the network holding the most', () => {
    const clock = { t: 0 };
    const slots = new UploadSlots(4, 2, 3, { minAgeMs: 10_000, keepBytesPerSecond: 1000 }, () => clock.t);
    const a = [upload(clock, 0, 500), upload(clock, 0, 100), upload(clock, 0, 50)];
    for (const [i, u] of a.entries()) slots.tryAcquire(`0xa${i}`, 'net-a', u.holder);
    const b = upload(clock, 0, 10); // the slowest of all, but alone in its network
    slots.tryAcquire('0xb', 'net-b', b.holder);
    // Too young to judge: 429 as before.
    clock.t = 9_999;
    expect(() => slots.tryAcquire('0xc', 'net-c')).toThrow(/4 uploads in progress/);
    clock.t = 20_000;
    slots.tryAcquire('0xc', 'net-c');
    expect(a[2]!.evictedWith).toMatch(/evicted: the node's 4 upload slots were full.*50 bytes\/s/);
    expect([a[0], a[1], b].map((u) => u!.evictedWith)).toEqual([undefined, undefined, undefined]);
    expect(slots.inProgress).toBe(4);
    // The evicted address got its share back.
    expect(() => slots.tryAcquire('0xa2', 'net-a')).not.toThrow();
    expect(a[1]!.evictedWith).toBeDefined();
  });

  it('never evicts an upload at the kept rate, nor one whose body is complete, nor without eviction', () => {
    const clock = { t: 0 };
    const slots = new UploadSlots(2, 2, 2, { minAgeMs: 10_000, keepBytesPerSecond: 1000 }, () => clock.t);
    const fast = upload(clock, 0, 1000);
    const complete = upload(clock, 0, 1, true);
    slots.tryAcquire('0x1', 'net-a', fast.holder);
    slots.tryAcquire('0x2', 'net-b', complete.holder);
    clock.t = 60_000;
    expect(() => slots.tryAcquire('0x3', 'net-c')).toThrow(/2 uploads in progress/);
    expect(fast.evictedWith).toBeUndefined();
    expect(slots.inProgress).toBe(2);
    // The complete one kept its counts: its address and network are still full.
    expect(() => slots.tryAcquire('0x2', 'net-b')).toThrow(/2 uploads in progress/);

    const plain = new UploadSlots(1, 1);
    const slow = upload(clock, 0, 0);
    plain.tryAcquire('0x1', 'net-a', slow.holder);
    clock.t = 120_000;
    expect(() => plain.tryAcquire('0x2', 'net-b')).toThrow(/1 uploads in progress/);
    expect(slow.evictedWith).toBeUndefined();
  });
});
