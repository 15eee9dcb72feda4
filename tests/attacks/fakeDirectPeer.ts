import { createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A stand-in for a session child's direct port on 127.0.0.1, for attacks on the requester's
 * `SessionStream`: it reads the stream's frames (u32 big-endian length, then a tag byte and the
 * body), acknowledges the first (the token) with the empty tag-2 frame the stream waits for, and
 * hands each later frame's 0-based index to `onRequest` with the connection. It never checks the
 * token, never decrypts, and answers only as `onRequest` writes (`answerFrame`).
 */
export interface FakeDirectPeer {
  port: number;
  /** Destroy every connection and stop listening. */
  close(): void;
}

/** One answer frame as a session child writes it: tag 0 and `body` (default empty). */
export function answerFrame(body: Uint8Array = new Uint8Array(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length + 1, 0);
  head[4] = 0;
  return Buffer.concat([head, body]);
}

export async function startFakeDirectPeer(
  onRequest: (index: number, socket: Socket) => void = () => undefined,
): Promise<FakeDirectPeer> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    let acked = false;
    let requests = 0;
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        if (!acked) {
          acked = true;
          s.write(Buffer.from([0, 0, 0, 1, 2]));
        } else onRequest(requests++, s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
