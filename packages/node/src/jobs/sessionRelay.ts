import { connect, type Socket } from 'node:net';
import { type ErrorCode, FirnError, hexBytes } from '@firn/core';
import { MAX_STREAM_FRAME_BYTES, STREAM_TAG, StreamFrameReader, writeStreamFrame } from '@firn/enclave';

/**
 * The host's one connection to a session's direct endpoint (the session's keyless child, a Unix
 * socket; docs/decisions/1240-direct-session-endpoint.md). Session messages are written as they
 * came from the requester and answers come back in order, so `send` may be called again before
 * the previous answer arrived (pipelining). The host sees only ciphertext and error codes.
 */
export class SessionRelay {
  private readonly pending: { resolve: (b: Buffer) => void; reject: (e: unknown) => void }[] = [];
  private gone: FirnError | undefined;

  private constructor(private readonly socket: Socket) {
    const reader = new StreamFrameReader(MAX_STREAM_FRAME_BYTES);
    socket.on('data', (chunk: Buffer) => {
      let frames: { tag: number; body: Buffer }[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.fail(e instanceof FirnError ? e : new FirnError('E_ENCLAVE_PROTOCOL', 'bad session frame'));
        return;
      }
      for (const f of frames) {
        const p = this.pending.shift();
        if (p === undefined) {
          this.fail(new FirnError('E_ENCLAVE_PROTOCOL', 'an answer nobody asked for on the session stream'));
          return;
        }
        if (f.tag === STREAM_TAG.message) p.resolve(f.body);
        else p.reject(errorOf(f.body));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () =>
      this.fail(
        new FirnError('E_RUNTIME_CRASHED', 'the session runtime ended; close the session and open a new one'),
      ),
    );
  }

  /** Connect to `path` and present `token` (hex, 32 bytes). Throws E_ENCLAVE_UNAVAILABLE. */
  static async connect(path: string, token: string): Promise<SessionRelay> {
    const socket = connect({ path, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', () =>
        reject(new FirnError('E_ENCLAVE_UNAVAILABLE', 'the session endpoint did not accept the connection')),
      );
    });
    socket.setNoDelay(true);
    writeStreamFrame(socket, STREAM_TAG.token, hexBytes(token, 'session endpoint token', 32));
    return new SessionRelay(socket);
  }

  /** Relay one session message; resolves with the sealed answer, rejects with the child's typed refusal. */
  send(message: Uint8Array): Promise<Buffer> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      writeStreamFrame(this.socket, STREAM_TAG.message, message);
    });
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.length;
  }

  close(): void {
    this.fail(new FirnError('E_NOT_FOUND', 'session closed'));
  }

  private fail(e: FirnError): void {
    this.gone ??= e;
    for (const p of this.pending.splice(0)) p.reject(this.gone);
    this.socket.destroy();
  }
}

/** A refusal frame's body: JSON {code, message}; anything else is E_ENCLAVE_PROTOCOL. */
export function errorOf(body: Uint8Array): FirnError {
  try {
    const o = JSON.parse(Buffer.from(body).toString('utf8')) as { code?: unknown; message?: unknown };
    if (typeof o.code === 'string' && /^E_[A-Z_]{1,40}$/.test(o.code))
      return new FirnError(o.code as ErrorCode, typeof o.message === 'string' ? o.message.slice(0, 500) : '');
  } catch {}
  return new FirnError('E_ENCLAVE_PROTOCOL', 'malformed session refusal');
}
