import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionStream } from '../../packages/client/src/sessionStream.ts';

// Decision 1530: a slow-but-honest peer must not be cut while each answer comes in time, however
// long the stream lives. A real session child runs requests ONE AT A TIME. A caller that pipelines
// a batch (infer() over a stream sends at once, in call order) starts every request's deadline at
// its send, so requests queued behind others at the child expire while the child is answering
// steadily, each answer well within requestTimeoutMs of the previous one: the whole batch fails
// with E_TIMEOUT and the session is closed (infer closes it after a failed request).

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A direct child that acknowledges the token, then answers requests strictly in turn, `ms` each. */
async function serialChild(ms: number): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let acked = false;
    let busyUntil = 0;
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const frame = buf.subarray(0, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(frame.length);
        if (!acked) {
          acked = true;
          socket.write(Buffer.of(0, 0, 0, 1, 2));
          continue;
        }
        // One model, one thread: this request starts when the one before it is answered.
        busyUntil = Math.max(busyUntil, performance.now()) + ms;
        setTimeout(() => socket.writable && socket.write(frame), busyUntil - performance.now());
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('a pipelined batch over a session stream to an honest, serial child', () => {
  it('is not cut while answers keep coming, each well within requestTimeoutMs of the last', async () => {
    const s = await SessionStream.connectDirect(
      '127.0.0.1',
      await serialChild(120),
      new Uint8Array(32).fill(7),
    );
    s.requestTimeoutMs = 400;
    // Six requests: answered at ~120, 240, ..., 720 ms; never more than 120 ms between answers.
    const answers = await Promise.allSettled(
      [1, 2, 3, 4, 5, 6].map((b) => s.send(new Uint8Array(40).fill(b))),
    );
    const failed = answers
      .filter((a) => a.status === 'rejected')
      .map((a) => (a as PromiseRejectedResult).reason.code);
    expect(failed).toEqual([]);
    s.close();
  });
});
