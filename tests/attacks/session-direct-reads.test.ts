import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { DirectFrameReader, SessionStream } from '@firn/client';
import type { FirnError } from '@firn/core';
import { afterEach, describe, expect, it } from 'vitest';

// The requester's direct connection reads each answer frame straight into its own buffer
// (docs/decisions/1420-session-reads-into-frame-buffers.md). Attacks by whoever holds the other
// end (a subverted child, or the host that carries the bytes): lengths over the cap, a zero
// length, answers nobody asked for, a wrong acknowledgement, and frames cut at every byte.

const TOKEN = randomBytes(32);

function frame(tag: number, body: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(body.length + 1, 0);
  head[4] = tag;
  return Buffer.concat([head, body]);
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A fake session child: acknowledges the token (unless told not to), then runs `script`. */
async function fakeChild(
  script: (socket: Socket, requests: Buffer[]) => void,
  ack: Buffer = frame(2, new Uint8Array(0)),
): Promise<number> {
  const server = createServer((socket) => {
    let got = Buffer.alloc(0);
    let acked = false;
    const requests: Buffer[] = [];
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      while (got.length >= 5 && got.length >= 4 + got.readUInt32BE(0)) {
        const len = got.readUInt32BE(0);
        const body = got.subarray(5, 4 + len);
        got = got.subarray(4 + len);
        if (!acked) {
          acked = true;
          expect(Buffer.compare(body, TOKEN)).toBe(0);
          socket.write(ack);
          script(socket, requests);
          continue;
        }
        requests.push(body);
        socket.emit('request', body);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('direct session reads: frames land in their own buffers', () => {
  it('answers cut at every byte, and several in one write, arrive whole, in order, byte for byte', async () => {
    const answers = [randomBytes(3), randomBytes(131_072 + 25), randomBytes(1), randomBytes(70_000)];
    const port = await fakeChild((socket) => {
      // Answered once all four requests are in, one write after the other is flushed.
      let n = 0;
      socket.on('request', () => {
        if (++n < 4) return;
        // The first answer one byte per write, each flushed before the next.
        const first = frame(0, answers[0]!);
        let i = 0;
        const drip = () => {
          if (i < first.length) {
            socket.write(first.subarray(i, ++i), () => setTimeout(drip, 1));
            return;
          }
          // The next two in one write, then the last split inside its header and inside its body.
          socket.write(Buffer.concat([frame(0, answers[1]!), frame(0, answers[2]!)]), () => {
            const last = frame(0, answers[3]!);
            socket.write(last.subarray(0, 3), () =>
              setTimeout(
                () =>
                  socket.write(last.subarray(3, 40_000), () =>
                    setTimeout(() => socket.write(last.subarray(40_000)), 5),
                  ),
                5,
              ),
            );
          });
        };
        drip();
      });
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, TOKEN);
    const got = await Promise.all([
      s.send(new Uint8Array([1])),
      s.send(new Uint8Array([2])),
      s.send(new Uint8Array([3])),
      s.send(new Uint8Array([4])),
    ]);
    for (let i = 0; i < answers.length; i++)
      expect(Buffer.compare(Buffer.from(got[i]!), answers[i]!)).toBe(0);
    // Each answer owns its memory: no two share a buffer, none is a view of a reused scratch.
    expect(new Set(got.map((g) => g.buffer)).size).toBe(got.length);
    s.close();
  });

  it('an answer buffer handed back is reused only for an answer of its size, and only once it is wholly overwritten', async () => {
    const sizes = [4096, 4096, 5000, 4096];
    const answers = sizes.map((n) => randomBytes(n));
    let write: ((i: number) => void) | undefined;
    const port = await fakeChild((socket) => {
      write = (i) => {
        const all = frame(0, answers[i]!);
        // Header and first half now, the rest later: the reader holds a half-filled buffer meanwhile.
        socket.write(all.subarray(0, 2000));
        setTimeout(() => socket.write(all.subarray(2000)), 20);
      };
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, TOKEN);
    const first = s.send(new Uint8Array([1]));
    await new Promise((r) => setTimeout(r, 20));
    write!(0);
    const a = await first;
    expect(Buffer.compare(Buffer.from(a), answers[0]!)).toBe(0);
    s.reuse(a);
    // A view, or a buffer this stream did not allocate, is never taken.
    s.reuse(a.subarray(1));
    s.reuse(Buffer.from(answers[1]!));
    const second = s.send(new Uint8Array([2]));
    write!(1);
    const b = await second;
    // Same memory, every byte the new answer's: nothing of the old one shows through.
    expect(b.buffer).toBe(a.buffer);
    expect(Buffer.compare(Buffer.from(b), answers[1]!)).toBe(0);
    // Another size gets its own memory; the spare of the first size is kept for a later answer.
    s.reuse(b);
    const third = s.send(new Uint8Array([3]));
    write!(2);
    const c = await third;
    expect(c.buffer).not.toBe(b.buffer);
    expect(Buffer.compare(Buffer.from(c), answers[2]!)).toBe(0);
    const fourth = s.send(new Uint8Array([4]));
    write!(3);
    const d = await fourth;
    expect(d.buffer).toBe(b.buffer);
    expect(Buffer.compare(Buffer.from(d), answers[3]!)).toBe(0);
    s.close();
  });

  it('a length over the cap ends the stream E_TOO_LARGE before any body is read or allocated', async () => {
    const port = await fakeChild((socket) => {
      socket.on('request', () => {
        const head = Buffer.allocUnsafe(5);
        head.writeUInt32BE(9 * 1024 * 1024, 0);
        head[4] = 0;
        socket.write(head);
      });
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, TOKEN);
    await expect(s.send(new Uint8Array([1]))).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    expect(s.closed).toBe(true);
    // The stream stays failed: a later request is refused at once, nothing is sent.
    await expect(s.send(new Uint8Array([2]))).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });

  it('a zero length ends the stream E_TOO_LARGE', async () => {
    const port = await fakeChild((socket) => {
      socket.on('request', () => socket.write(Buffer.from([0, 0, 0, 0, 0])));
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, TOKEN);
    await expect(s.send(new Uint8Array([1]))).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });

  it('an answer nobody asked for ends the stream E_PARSE', async () => {
    const port = await fakeChild((socket) => {
      socket.on('request', () =>
        socket.write(Buffer.concat([frame(0, randomBytes(10)), frame(0, randomBytes(10))])),
      );
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, TOKEN);
    const first = await s.send(new Uint8Array([1]));
    expect(first.length).toBe(10);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.closed).toBe(true);
    await expect(s.send(new Uint8Array([2]))).rejects.toMatchObject({ code: 'E_PARSE' });
  });

  it('a child that answers the token with anything but an empty tag-2 frame is not used', async () => {
    for (const ack of [
      frame(0, new Uint8Array(0)),
      frame(2, new Uint8Array([1])),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 2]),
    ]) {
      const port = await fakeChild(() => undefined, ack);
      await expect(
        SessionStream.connectDirect('127.0.0.1', port, TOKEN, undefined, 2000),
      ).rejects.toMatchObject({
        code: 'E_UNAVAILABLE',
      });
    }
  });

  it('the reader refuses an over-cap header without allocating and stays refused', () => {
    const frames: Buffer[] = [];
    const errors: FirnError[] = [];
    const r = new DirectFrameReader(
      1000,
      (_t, b) => frames.push(b),
      (e) => errors.push(e),
    );
    const feed = (bytes: Buffer) => {
      let at = 0;
      while (at < bytes.length) {
        const into = r.nextBuffer();
        expect(into.length).toBeGreaterThan(0);
        const n = Math.min(into.length, bytes.length - at);
        bytes.copy(into, 0, at, at + n);
        r.filled(n);
        at += n;
      }
    };
    feed(frame(0, randomBytes(999)));
    expect(frames.map((f) => f.length)).toEqual([999]);
    // The header is read alone: the next buffer offered is at most the 5 header bytes.
    expect(r.nextBuffer().length).toBe(5);
    const head = Buffer.from([0, 0, 3, 0xe9, 0]); // 1001 > 1000
    head.copy(r.nextBuffer());
    r.filled(5);
    expect(errors.map((e) => e.code)).toEqual(['E_TOO_LARGE']);
    expect(r.nextBuffer().length).toBeLessThanOrEqual(5);
    r.filled(1);
    expect(frames.length).toBe(1);
    expect(errors.length).toBe(1);
  });
});
