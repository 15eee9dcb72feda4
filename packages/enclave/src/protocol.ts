import type { Socket } from 'node:net';
import { FirnError, type ErrorCode } from '@firn/core';

/**
 * The host <-> enclave protocol, version 1: each frame is a 4-byte big-endian length and a UTF-8
 * JSON object. Requests {v, id, method, params}; responses {v, id, result} or {v, id, error}.
 * Everything that crosses is either public (keys, quotes) or ciphertext.
 */
export const PROTOCOL_VERSION = 1;
export const MAX_FRAME_BYTES = 32 * 1024 * 1024;

export interface RequestFrame {
  v: 1;
  id: number;
  method: string;
  params: Record<string, unknown>;
}
export type ResponseFrame =
  | { v: 1; id: number; result: unknown }
  | { v: 1; id: number; error: { code: ErrorCode; message: string } }
  | { v: 1; id: 0; event: string; data: unknown };

export function encodeFrame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  if (body.length > MAX_FRAME_BYTES) throw new FirnError('E_TOO_LARGE', 'enclave frame over the size limit');
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(body.length);
  return Buffer.concat([hdr, body]);
}

/** Incremental frame decoder: feed chunks, get whole frames; an oversized length is an error. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: unknown[] = [];
    for (;;) {
      if (this.buf.length < 4) break;
      const len = this.buf.readUInt32BE(0);
      if (len > MAX_FRAME_BYTES)
        throw new FirnError('E_ENCLAVE_PROTOCOL', `frame length ${len} over the limit`);
      if (this.buf.length < 4 + len) break;
      const body = this.buf.subarray(4, 4 + len);
      this.buf = this.buf.subarray(4 + len);
      try {
        out.push(JSON.parse(body.toString('utf8')));
      } catch (e) {
        throw new FirnError('E_ENCLAVE_PROTOCOL', 'frame is not JSON', { cause: e });
      }
    }
    return out;
  }
}

export function isRequestFrame(o: unknown): o is RequestFrame {
  const r = o as Partial<RequestFrame> | null;
  return (
    !!r &&
    r.v === PROTOCOL_VERSION &&
    typeof r.id === 'number' &&
    typeof r.method === 'string' &&
    typeof r.params === 'object' &&
    r.params !== null
  );
}

// ---- session streams (docs/decisions/1240-direct-session-endpoint.md) ----
// Binary frames of the warm-session hot path: requester <-> host (an upgraded HTTP connection) and
// host <-> the session's child (a Unix socket). No JSON, no base64: message bytes travel as they are.

/** Largest session message (MAX_SESSION_MESSAGE_BYTES of @firn/crypto: 8 MiB). */
const MAX_STREAM_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Frame tags on the session streams (host-child and requester-host). */
export const STREAM_TAG = { message: 0, error: 1, token: 2 } as const;
/** Bytes of the connection token the open result carries. */
export const SESSION_TOKEN_BYTES = 32;
/** Largest frame body on a session stream: one session message and its tag. */
export const MAX_STREAM_FRAME_BYTES = MAX_STREAM_MESSAGE_BYTES + 1;

/** Encode one stream frame: u32 BE length of (tag || body), tag, body. */
export function encodeStreamFrame(tag: number, body: Uint8Array): [Buffer, Buffer] {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(body.length + 1, 0);
  head[4] = tag;
  return [head, Buffer.from(body.buffer, body.byteOffset, body.byteLength)];
}

/**
 * Write one frame without copying the body: corked and uncorked at once, so header and body leave
 * in one writev now (not on a later tick).
 */
export function writeStreamFrame(socket: Socket, tag: number, body: Uint8Array): void {
  const [head, b] = encodeStreamFrame(tag, body);
  socket.cork();
  socket.write(head);
  socket.write(b);
  socket.uncork();
}

/**
 * Incremental reader of stream frames (`u32 BE length || u8 tag || body`): feed socket chunks, get
 * {tag, body} frames. A frame whose length is 0 or over `maxBody` bytes fails with E_TOO_LARGE /
 * E_PARSE before anything is buffered for it. Bodies are views of the received chunk when a frame
 * lies in one chunk; a frame split across chunks is copied as it arrives into one buffer of its
 * own, grown by doubling (from 64 KiB) and sized exactly once half of it is there, so it holds at
 * most about twice the bytes received, never one object per chunk: a frame dribbled one byte per
 * read held ~120 bytes of heap per byte (8 MiB in 1-byte chunks: ~970 MiB RSS; docs/decisions/
 * 1602-relayed-frames-copied-into-their-own-buffer.md).
 */
export class StreamFrameReader {
  /** The unfinished frame's bytes so far (capacity grows up to `need`), else undefined. */
  private part: Buffer | undefined;
  private fill = 0;
  /** The unfinished frame's whole size (4 + length) once its length is known, else 0. */
  private need = 0;

  constructor(private readonly maxBody = MAX_STREAM_FRAME_BYTES) {}

  push(chunk: Buffer): { tag: number; body: Buffer }[] {
    const out: { tag: number; body: Buffer }[] = [];
    let off = 0;
    if (this.part !== undefined) {
      off = this.continueFrame(chunk, out);
      if (this.part !== undefined) return out;
    }
    // Whole frames in this chunk: views, no copy.
    while (chunk.length - off >= 4) {
      const len = this.lengthOf(chunk, off);
      if (chunk.length - off < 4 + len) break;
      out.push({ tag: chunk[off + 4]!, body: chunk.subarray(off + 5, off + 4 + len) });
      off += 4 + len;
    }
    if (off < chunk.length) {
      const rest = chunk.subarray(off);
      this.need = rest.length >= 4 ? 4 + this.lengthOf(rest, 0) : 0;
      this.part = Buffer.allocUnsafe(this.capacityFor(rest.length));
      this.fill = rest.copy(this.part, 0);
    }
    return out;
  }

  /** The checked frame length at `off` (E_PARSE for 0, E_TOO_LARGE over maxBody). */
  private lengthOf(b: Buffer, off: number): number {
    const len = b.readUInt32BE(off);
    if (len === 0) throw new FirnError('E_PARSE', 'empty session stream frame');
    if (len > this.maxBody)
      throw new FirnError('E_TOO_LARGE', `a session stream frame is at most ${this.maxBody} bytes`);
    return len;
  }

  /** Buffer size for `have` bytes of the unfinished frame: 4 while its length is unknown. */
  private capacityFor(have: number): number {
    if (this.need === 0) return 4;
    if (have * 2 >= this.need) return this.need;
    return Math.min(this.need, Math.max(have * 2, 64 * 1024));
  }

  /** Copy `chunk` into the unfinished frame; emits it when whole. Returns the bytes of chunk used. */
  private continueFrame(chunk: Buffer, out: { tag: number; body: Buffer }[]): number {
    let off = 0;
    if (this.need === 0) {
      const take = Math.min(4 - this.fill, chunk.length);
      chunk.copy(this.part!, this.fill, 0, take);
      this.fill += take;
      off = take;
      if (this.fill < 4) return off;
      this.need = 4 + this.lengthOf(this.part!, 0);
    }
    const take = Math.min(this.need - this.fill, chunk.length - off);
    if (this.part!.length < this.fill + take) {
      const bigger = Buffer.allocUnsafe(Math.max(this.capacityFor(this.fill + take), this.fill + take));
      this.part!.copy(bigger, 0, 0, this.fill);
      this.part = bigger;
    }
    chunk.copy(this.part!, this.fill, off, off + take);
    this.fill += take;
    off += take;
    if (this.fill === this.need) {
      const frame = this.part!;
      out.push({ tag: frame[4]!, body: frame.subarray(5, this.need) });
      this.part = undefined;
      this.fill = 0;
      this.need = 0;
    }
    return off;
  }
}
