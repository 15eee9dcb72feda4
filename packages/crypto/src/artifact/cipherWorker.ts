import { Worker } from 'node:worker_threads';
import { FirnError } from '@firn/core';
import { CHUNK_TAG_BYTES } from './artifactHeader.ts';
import { CIPHER_SLICE, TAG_TAIL } from './chunkCipher.ts';

/**
 * A second thread for the chunk cipher of seal (decision 1320, measured and reverted). The chunks
 * of a sealed artifact are independent AES-256-GCM messages (decision 1161), so while the calling
 * thread ciphers one chunk inline, this thread ciphers another. Its input is copied into a
 * SharedArrayBuffer slot the stream reuses; it ciphers with node:crypto and transfers its output
 * buffers back (no copy). Started on first use, shared by every stream of the process, referenced
 * only while a chunk is in flight.
 */

/** The worker's source (CommonJS, evaluated by `new Worker(..., { eval: true })`). */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createCipheriv } = require('node:crypto');
const TAG = ${CHUNK_TAG_BYTES};
const TAIL = ${TAG_TAIL};
const own = (b) => (b.byteOffset === 0 && b.buffer.byteLength === b.length ? b : new Uint8Array(b));
function join(a, b) {
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}
function seal(m, input) {
  const c = createCipheriv('aes-256-gcm', m.key, m.nonce, { authTagLength: TAG });
  c.setAAD(m.aad);
  const tailAt = Math.max(0, input.length - TAIL);
  const out = [];
  if (tailAt > 0) out.push(own(c.update(input.subarray(0, tailAt))));
  const tail = c.update(input.subarray(tailAt));
  c.final();
  out.push(join(tail, c.getAuthTag()));
  return out;
}
parentPort.on('message', (m) => {
  if (m.op === 'crash') throw new Error('crash requested');
  const out = seal(m, new Uint8Array(m.sab, m.off, m.n));
  parentPort.postMessage({ id: m.id, out }, out.map((p) => p.buffer));
});
`;

/** Output pieces of one chunk. */
export type ChunkResult = Uint8Array[] | undefined;

/** Views of CIPHER_SLICE bytes (no copy) of a buffer the thread returned whole. */
function sliced(b: Uint8Array): Uint8Array[] {
  if (b.length <= CIPHER_SLICE) return [b];
  const out: Uint8Array[] = [];
  for (let o = 0; o < b.length; o += CIPHER_SLICE) out.push(b.subarray(o, o + CIPHER_SLICE));
  return out;
}

interface Pending {
  resolve: (r: ChunkResult) => void;
  reject: (e: unknown) => void;
}

/** One cipher job: the plaintext lies in `sab` at `off`, `n` bytes. */
export interface ChunkJob {
  op: 'seal';
  sab: SharedArrayBuffer;
  off: number;
  n: number;
  key: Uint8Array;
  nonce: Uint8Array;
  aad: Uint8Array;
}

/**
 * The process's chunk-cipher thread. `ready` is false until the thread runs (streams cipher
 * inline meanwhile). If the thread dies, every chunk in flight is rejected with
 * FirnError('E_INTERNAL') and the next stream starts a fresh thread.
 */
export class CipherWorker {
  private worker: Worker | undefined;
  private online = false;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** True once the thread runs; starts it on the first call. */
  get ready(): boolean {
    if (this.worker === undefined) this.start();
    return this.online;
  }

  /** Chunks sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  private start(): void {
    const w = new Worker(WORKER_SOURCE, { eval: true, name: 'firn-artifact-cipher' });
    this.worker = w;
    this.online = false;
    w.unref();
    w.on('online', () => {
      if (this.worker === w) this.online = true;
    });
    w.on('message', (m: { id: number; out: ChunkResult }) => {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      p.resolve(m.out === undefined ? undefined : m.out.flatMap(sliced));
    });
    w.on('error', (e) => this.fail(w, e));
    w.on('exit', (code) => this.fail(w, new Error(`exited with code ${code}`)));
  }

  private fail(w: Worker, cause: unknown): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    this.online = false;
    const err = new FirnError(
      'E_INTERNAL',
      'the artifact cipher thread stopped before finishing a chunk; the operation was abandoned',
      { cause },
    );
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** Cipher one chunk on the thread; rejects with FirnError('E_INTERNAL') if the thread stops first. */
  run(job: ChunkJob): Promise<ChunkResult> {
    if (this.worker === undefined) this.start();
    const w = this.worker!;
    const id = this.nextId++;
    return new Promise<ChunkResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) w.ref();
      w.postMessage({ ...job, id });
    });
  }
}

/** The process-wide cipher thread (started lazily). */
export const cipherWorker = new CipherWorker();

/** A chunk between reading and handing on; `wait` never rejects (a failure lands in `err`). */
export interface ChunkEntry {
  done: boolean;
  out: ChunkResult;
  err?: unknown;
  wait?: Promise<void>;
}

/** An entry for a result already computed on the calling thread. */
export const inlineEntry = (out: ChunkResult): ChunkEntry => ({ done: true, out });

/** An entry for a chunk on the cipher thread; `settled` runs once it answered or failed. */
export function threadedEntry(p: Promise<ChunkResult>, settled: () => void): ChunkEntry {
  const e: ChunkEntry = { done: false, out: undefined };
  e.wait = p
    .then(
      (r) => {
        e.out = r;
      },
      (x: unknown) => {
        e.err = x;
      },
    )
    .finally(() => {
      e.done = true;
      settled();
    });
  return e;
}
