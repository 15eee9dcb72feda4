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
