import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { DirectFrameReader, MAX_SPARE_ANSWERS, SessionStream } from '@firn/client';
import type { FirnError } from '@firn/core';
import { afterEach, describe, expect, it } from 'vitest';
import { StreamFrameReader } from '../../packages/enclave/src/protocol.ts';
import { EndpointFrameReader } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';

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

  it('keeps at most MAX_SPARE_ANSWERS answers for reuse, the most recent ones', async () => {
    const port = await fakeChild((socket) => {
      socket.on('request', () => socket.write(frame(0, randomBytes(4096))));
    });
    const s = await SessionStream.connectDirect('127.0.0.1', port, TOKEN);
    const first: Uint8Array[] = [];
    for (let i = 0; i < MAX_SPARE_ANSWERS + 1; i++) first.push(await s.send(new Uint8Array([i])));
    for (const a of first) s.reuse(a);
    const again: Uint8Array[] = [];
    for (let i = 0; i < MAX_SPARE_ANSWERS + 1; i++) again.push(await s.send(new Uint8Array([i])));
    const reused = again.filter((b) => first.some((a) => a.buffer === b.buffer));
    expect(reused.length).toBe(MAX_SPARE_ANSWERS);
    // The oldest was dropped, never handed out again.
    expect(again.some((b) => b.buffer === first[0]!.buffer)).toBe(false);
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

describe("the child's frame reader: gathered frames reuse memory only once answered", () => {
  const frames = [
    randomBytes(1),
    randomBytes(131_072 + 26),
    randomBytes(0),
    randomBytes(70_000),
    randomBytes(131_072 + 26),
  ];
  const wire = Buffer.concat(frames.map((b, i) => frame(i % 3, b)));

  it('reads exactly what StreamFrameReader reads, for reads cut anywhere', () => {
    // Cuts of a few bytes over small frames, larger cuts over the whole wire.
    const small = Buffer.concat(
      [randomBytes(1), randomBytes(300), randomBytes(0), randomBytes(9)].map((b) => frame(0, b)),
    );
    for (const [cut, bytes] of [
      [1, small],
      [2, small],
      [3, small],
      [4, small],
      [5, small],
      [7, small],
      [4096, wire],
      [65_536, wire],
      [100_000, wire],
      [wire.length, wire],
    ] as const) {
      const a = new EndpointFrameReader(1 << 20);
      const b = new StreamFrameReader(1 << 20);
      const got: { tag: number; body: string }[] = [];
      const want: { tag: number; body: string }[] = [];
      for (let at = 0; at < bytes.length; at += cut) {
        const piece = Buffer.from(bytes.subarray(at, at + cut));
        for (const f of a.push(piece)) got.push({ tag: f.tag, body: f.body.toString('hex') });
        for (const f of b.push(piece)) want.push({ tag: f.tag, body: f.body.toString('hex') });
      }
      expect(got).toEqual(want);
      expect(got.length).toBe(bytes === wire ? frames.length : 4);
    }
  });

  it('refuses a zero length E_PARSE and an over-cap length E_TOO_LARGE from the 4-byte prefix alone', () => {
    expect(() => new EndpointFrameReader(100).push(Buffer.from([0, 0, 0, 0]))).toThrow(
      expect.objectContaining({ code: 'E_PARSE' }),
    );
    expect(() => new EndpointFrameReader(100).push(Buffer.from([0, 0, 0, 101]))).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
    // Split inside the prefix: refused as soon as the fourth byte is in.
    const r = new EndpointFrameReader(100);
    expect(r.push(Buffer.from([0, 0]))).toEqual([]);
    expect(() => r.push(Buffer.from([1, 0]))).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
  });

  it('a gathered frame is never overwritten while its request is pending; once done, the next of its size reuses it', () => {
    const r = new EndpointFrameReader(1 << 20);
    const body1 = randomBytes(100_000);
    const body2 = randomBytes(100_000);
    const body3 = randomBytes(100_000);
    const feed = (b: Buffer) => {
      const all = frame(0, b);
      return [...r.push(Buffer.from(all.subarray(0, 65_536))), ...r.push(Buffer.from(all.subarray(65_536)))];
    };
    const [f1] = feed(body1);
    // Not done yet: the next frame of the same size gets other memory, f1 keeps its bytes.
    const [f2] = feed(body2);
    expect(f2!.body.buffer).not.toBe(f1!.body.buffer);
    expect(Buffer.compare(f1!.body, body1)).toBe(0);
    f1!.done();
    const [f3] = feed(body3);
    expect(f3!.body.buffer).toBe(f1!.body.buffer);
    expect(Buffer.compare(f3!.body, body3)).toBe(0);
    expect(Buffer.compare(f2!.body, body2)).toBe(0);
    // A frame inside one read stays a view of that read; its done() gives nothing back.
    const small = r.push(frame(1, randomBytes(10)));
    small[0]!.done();
    const [f4] = feed(randomBytes(100_000));
    expect(f4!.body.buffer).not.toBe(small[0]!.body.buffer);
  });
});
