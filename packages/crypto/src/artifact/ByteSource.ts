import { FirnError, InvalidInputError } from '@firn/core';

/** Pieces shorter than this are copied together into blocks of this size (a source dribbling bytes). */
const COALESCE_BELOW = 64 * 1024;

/** What the artifact functions read from: an async iterable of bytes or a Node readable stream. */
export type ByteStream = AsyncIterable<Uint8Array> | NodeJS.ReadableStream;

/**
 * Pull-based reader over a byte stream: read(n) returns exactly n bytes, or fewer only at the end.
 * Holds at most one read's worth of data plus one incoming piece, so memory stays bounded.
 */
export class ByteSource {
  private readonly it: AsyncIterator<unknown>;
  private pieces: Uint8Array[] = [];
  private buffered = 0;
  private done = false;
  /** The block small pieces are copied into; bytes past `used` were never handed out. */
  private fill: { buf: Uint8Array; used: number } | undefined;

  constructor(source: ByteStream) {
    const iterable = source as AsyncIterable<unknown>;
    if (
      iterable === null ||
      typeof iterable !== 'object' ||
      typeof iterable[Symbol.asyncIterator] !== 'function'
    )
      throw new InvalidInputError('source must be an async iterable of bytes or a readable stream');
    this.it = iterable[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    if (!(r.value instanceof Uint8Array))
      throw new InvalidInputError('source yielded something other than bytes');
    const v = r.value;
    if (v.length >= COALESCE_BELOW) this.pieces.push(v);
    else if (v.length > 0) {
      // A small piece is copied onto the end of a block of our own (extending the last piece when
      // that ends where the block's used part ends), so a chunk is never thousands of tiny pieces.
      let f = this.fill;
      if (f === undefined || f.buf.length - f.used < v.length)
        f = this.fill = { buf: new Uint8Array(COALESCE_BELOW), used: 0 };
      f.buf.set(v, f.used);
      const last = this.pieces[this.pieces.length - 1];
      if (last !== undefined && last.buffer === f.buf.buffer && last.byteOffset + last.length === f.used)
        this.pieces[this.pieces.length - 1] = f.buf.subarray(last.byteOffset, f.used + v.length);
      else this.pieces.push(f.buf.subarray(f.used, f.used + v.length));
      f.used += v.length;
    }
    this.buffered += v.length;
    return true;
  }

  /** Exactly n bytes, or fewer only when the stream ended. */
  async read(n: number): Promise<Uint8Array> {
    while (this.buffered < n && (await this.pull()));
    const take = Math.min(n, this.buffered);
    const first = this.pieces[0];
    if (first !== undefined && first.length >= take) {
      // Fast path: the first piece holds the whole read, no copy.
      const out = first.subarray(0, take);
      if (first.length === take) this.pieces.shift();
      else this.pieces[0] = first.subarray(take);
      this.buffered -= take;
      return out;
    }
    const out = new Uint8Array(take);
    let o = 0;
    while (o < take) {
      const p = this.pieces[0];
      if (p === undefined) throw new FirnError('E_INTERNAL', 'byte source underflow');
      const k = Math.min(p.length, take - o);
      out.set(p.subarray(0, k), o);
      o += k;
      if (k === p.length) this.pieces.shift();
      else this.pieces[0] = p.subarray(k);
    }
    this.buffered -= take;
    return out;
  }

  /**
   * Up to n bytes as the source's own pieces (subarrays, no copy), in order: exactly n bytes, or
   * fewer only when the stream ended. The cipher loops feed these straight to AES-GCM, which
   * streams, so a chunk spread over several source pieces is never joined into a new buffer.
   */
  async readPieces(n: number): Promise<Uint8Array[]> {
    while (this.buffered < n && (await this.pull()));
    const out: Uint8Array[] = [];
    let left = Math.min(n, this.buffered);
    this.buffered -= left;
    while (left > 0) {
      const p = this.pieces[0];
      if (p === undefined) throw new FirnError('E_INTERNAL', 'byte source underflow');
      if (p.length <= left) {
        out.push(p);
        this.pieces.shift();
        left -= p.length;
      } else {
        out.push(p.subarray(0, left));
        this.pieces[0] = p.subarray(left);
        left = 0;
      }
    }
    return out;
  }

  /** True when no byte is left (pulls from the stream if nothing is buffered). */
  async atEnd(): Promise<boolean> {
    while (this.buffered === 0) if (!(await this.pull())) return true;
    return false;
  }

  /** Stop the underlying iterator early (on error or when the consumer stops). */
  async close(): Promise<void> {
    this.pieces = [];
    this.buffered = 0;
    if (!this.done && typeof this.it.return === 'function') {
      this.done = true;
      await this.it.return();
    }
  }
}
