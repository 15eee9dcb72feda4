import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { bytesToHex } from '@firn/core';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SESSION_REQUEST_TIMEOUT_MS, SessionStream } from './sessionStream.ts';

// A session child (or a host) that accepts the connection and then never answers, or answers one
// byte at a time, must not hold the requester for ever: each request has a deadline
// (SessionStream.requestTimeoutMs, openInferenceSession's requestTimeoutMs).

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

type Behaviour = (socket: Socket, frame: Buffer) => void;

/** A fake direct endpoint: it acknowledges the token frame (empty tag 2), then `onRequest` per frame. */
async function fakeChild(onRequest: Behaviour): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let acked = false;
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const frame = buf.subarray(0, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(frame.length);
        if (!acked) {
          acked = true;
          socket.write(Buffer.of(0, 0, 0, 1, 2));
        } else onRequest(socket, frame);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

const token = new Uint8Array(32).fill(7);
const msg = (b: number) => new Uint8Array(40).fill(b);
const echo: Behaviour = (socket, frame) => socket.write(frame);
const silent: Behaviour = () => undefined;

describe('direct session stream: a per-request deadline', () => {
  it('a child that accepts and goes silent: the request and every one queued behind it fail with E_TIMEOUT, the stream ends', async () => {
    const s = await SessionStream.connectDirect('127.0.0.1', await fakeChild(silent), token);
    expect(s.requestTimeoutMs).toBe(DEFAULT_SESSION_REQUEST_TIMEOUT_MS);
    s.requestTimeoutMs = 300;
    const t0 = performance.now();
    const answers = [s.send(msg(1)), s.send(msg(2)), s.send(msg(3))].map((p) => p.catch((e: unknown) => e));
    const errs = await Promise.all(answers);
    const took = performance.now() - t0;
    for (const e of errs) {
      expect(e).toMatchObject({ code: 'E_TIMEOUT' });
      expect((e as Error).message).toMatch(/requestTimeoutMs/);
    }
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(3_000);
    expect(s.closed).toBe(true);
    // Spent: a later request is refused at once.
    await expect(s.send(msg(4))).rejects.toMatchObject({ code: 'E_TIMEOUT' });
  });

  it('a child that dribbles its answer one byte at a time: E_TIMEOUT at the deadline', async () => {
    const port = await fakeChild((socket) => {
      // A frame that claims 1000 bytes and sends them one every 100 ms.
      socket.write(Buffer.of(0, 0, 3, 0xe8, 0));
      const t = setInterval(() => socket.writable && socket.write(Buffer.of(1)), 100);
      socket.on('close', () => clearInterval(t));
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, token);
    s.requestTimeoutMs = 500;
    const t0 = performance.now();
    await expect(s.send(msg(1))).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  it('answers that each come in time are never cut, however long the stream lives; the deadline is per request', async () => {
    const s = await SessionStream.connectDirect(
      '127.0.0.1',
      await fakeChild((socket, frame) => setTimeout(() => socket.write(frame), 120)),
      token,
    );
    s.requestTimeoutMs = 300;
    // Six sequential requests of ~120 ms each: 720 ms in all, over twice the per-request limit.
    for (let i = 0; i < 6; i++) expect(bytesToHex(await s.send(msg(i)))).toBe(bytesToHex(msg(i)));
    // Pipelined: each is answered 120 ms after it arrives, in order.
    const all = await Promise.all([1, 2, 3].map((b) => s.send(msg(b))));
    expect(all.map((a) => a[0])).toEqual([1, 2, 3]);
    expect(s.closed).toBe(false);
    // The deadline timer never keeps the process alive, and is gone once the stream is closed.
    const timer = (s as unknown as { deadline?: NodeJS.Timeout }).deadline;
    if (timer !== undefined) expect(timer.hasRef()).toBe(false);
    s.close();
    expect((s as unknown as { deadline?: NodeJS.Timeout }).deadline).toBeUndefined();
  });

  it('a quick echo well inside the default limit leaves no pending timer work behind a close', async () => {
    const s = await SessionStream.connectDirect('127.0.0.1', await fakeChild(echo), token);
    expect((await s.send(msg(9)))[0]).toBe(9);
    s.close();
    expect((s as unknown as { deadline?: NodeJS.Timeout }).deadline).toBeUndefined();
  });
});

describe('relayed session stream (HTTP upgrade): bounded', () => {
  it('a node that takes the upgrade request and never answers: E_TIMEOUT', async () => {
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.resume();
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const t0 = performance.now();
    await expect(
      SessionStream.open(url, `0x${'11'.repeat(32)}`, undefined, undefined, 300),
    ).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  it('a node that upgrades and then goes silent: the request fails with E_TIMEOUT', async () => {
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.once('data', () =>
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: firn-session/1\r\n\r\n',
        ),
      );
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const s = await SessionStream.open(
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      `0x${'11'.repeat(32)}`,
    );
    s.requestTimeoutMs = 300;
    await expect(s.send(msg(1))).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    expect(s.closed).toBe(true);
  });
});

describe('the deadline keeps nothing alive', () => {
  it('a process that got its answer and closed its stream exits at once, not after requestTimeoutMs', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'firn-deadline-'));
    const script = join(dir, 'run.mts');
    // The child: an echo endpoint and a stream in one process; one answered request, then both
    // closed. A 60 s deadline timer that held the event loop would keep it alive for a minute.
    writeFileSync(
      script,
      `import { createServer } from 'node:net';
import { SessionStream } from ${JSON.stringify(join(import.meta.dirname, 'sessionStream.ts'))};
const server = createServer((s) => {
  let acked = false;
  s.on('data', (c) => { if (!acked) { acked = true; s.write(Buffer.of(0, 0, 0, 1, 2)); } else s.write(c); });
  s.on('error', () => {});
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const st = await SessionStream.connectDirect('127.0.0.1', server.address().port, new Uint8Array(32));
const a = await st.send(new Uint8Array(40).fill(5));
st.close();
server.close();
console.log('answered', a[0]);
`,
    );
    const t0 = performance.now();
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (code) => {
        clearTimeout(kill);
        resolve({ code, text });
      });
    });
    expect(out.text).toContain('answered 5');
    expect(out.code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(15_000);
  }, 30_000);
});
