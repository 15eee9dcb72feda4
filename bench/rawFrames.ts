/**
 * Length-prefixed frames for the transport floor (bench/inferenceFloorChild.ts and its parent in
 * bench/confidentialInference.ts): u32 big-endian body length, then the body. Each body is read
 * straight into one buffer of its size (`alloc`), whole frames go to `onFrame` in order. No cap:
 * both ends are the benchmark's own processes. Not a benchmark itself (bench/index.ts).
 */
import type { Socket } from 'node:net';

export function readRawFrames(
  socket: Socket,
  alloc: (size: number) => Buffer,
  onFrame: (body: Buffer) => void,
): void {
  let head = Buffer.alloc(0);
  let body: Buffer | undefined;
  let filled = 0;
  socket.on('data', (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (body === undefined) {
        const need = 4 - head.length;
        head = Buffer.concat([head, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (head.length < 4) return;
        body = alloc(head.readUInt32BE(0));
        filled = 0;
        head = Buffer.alloc(0);
      }
      const n = Math.min(body.length - filled, chunk.length - at);
      chunk.copy(body, filled, at, at + n);
      filled += n;
      at += n;
      if (filled === body.length) {
        const frame = body;
        body = undefined;
        onFrame(frame);
      }
    }
  });
}

/** Write one frame whose body is `parts` concatenated, in one corked write. */
export function writeRawFrame(socket: Socket, parts: readonly Uint8Array[]): void {
  let size = 0;
  for (const p of parts) size += p.length;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(size, 0);
  socket.cork();
  socket.write(head);
  for (const p of parts) socket.write(p);
  socket.uncork();
}
