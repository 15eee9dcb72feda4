import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FirnError } from '@firn/core';
import { CHUNK_TAG_BYTES } from './artifactHeader.ts';

/**
 * Chunk-cipher threads for seal and open (decision 1370). The chunks of a sealed artifact are
 * independent AES-256-GCM messages (decision 1161), so threads of this process cipher them while
 * the calling thread only moves bytes. Each stream owns a ring of reusable slots in two
 * SharedArrayBuffers: the calling thread copies a chunk's input into an input slot, a thread
 * ciphers it INTO the matching output slot (its own `update` outputs are small, cache-hot and die
 * at once), and the calling thread hands on views of the output slot. Nothing crosses threads but
 * a few numbers per chunk: no transferred buffer, no external memory for the calling thread's
 * collector (what made 1320's worker lose), no fresh pages per chunk.
 *
 * Threads are started lazily, shared by every stream of the process, and referenced only while a
 * chunk is in flight (an idle pool never keeps the process alive). A thread that dies fails every
 * chunk in flight with FirnError('E_INTERNAL'); the next stream starts fresh threads.
 */

/** Tunables; tests and the benchmark flip `enabled` to compare with the inline cipher. */
export const cipherPoolSettings = {
  /** Use the threads at all (off: every chunk is ciphered inline, decision 1260). */
  enabled: availableParallelism() >= 2,
  /** Threads in the pool (one per core here; the calling thread mostly waits). */
  threads: Math.min(2, Math.max(1, availableParallelism())),
  /** Chunks below this size stay inline: a round trip costs more than it saves. */
  minChunkBytes: 64 * 1024,
  /** A stream starts using the pool at this chunk (earlier ones inline), so small artifacts never start a thread. */
  fromChunk: 2,
  /** Chunks in flight per stream (2 per thread keeps each thread fed). */
  inFlight: 4,
  /** Most bytes of ring (both sides) per stream; bigger chunks get fewer slots (at least 3). */
  maxRingBytes: 24 * 1024 * 1024,
  /** Bytes fed to one `update` on a thread: small outputs stay in cache and in the allocator's free lists. */
  slice: 64 * 1024,
};

/** The thread's source (CommonJS, run by `new Worker(..., { eval: true })`: no loader, no host package). */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { createCipheriv, createDecipheriv } = require('node:crypto');
const TAG = ${CHUNK_TAG_BYTES};
const streams = new Map();
function seal(s, m) {
  const c = createCipheriv('aes-256-gcm', s.key, m.nonce, { authTagLength: TAG });
  c.setAAD(s.aad);
  const end = m.off + m.n;
  for (let o = m.off; o < end; ) {
    const e = Math.min(end, o + m.slice);
    const ct = c.update(s.inp.subarray(o, e));
    s.out.set(ct, o);
    o = e;
  }
  c.final();
  s.out.set(c.getAuthTag(), end);
  return true;
}
function open(s, m) {
  const ctEnd = m.off + m.n - TAG;
  const d = createDecipheriv('aes-256-gcm', s.key, m.nonce, { authTagLength: TAG });
  d.setAAD(s.aad);
  d.setAuthTag(s.inp.slice(ctEnd, ctEnd + TAG));
  for (let o = m.off; o < ctEnd; ) {
    const e = Math.min(ctEnd, o + m.slice);
    const pt = d.update(s.inp.subarray(o, e));
    s.out.set(pt, o);
    pt.fill(0);
    o = e;
  }
  try {
    d.final();
    return true;
  } catch {
    s.out.fill(0, m.off, ctEnd);
    return false;
  }
}
parentPort.on('message', (m) => {
  if (m.op === 'begin') {
    streams.set(m.sid, { key: m.key, aad: m.aad, inp: new Uint8Array(m.inp), out: new Uint8Array(m.out) });
    return;
  }
  if (m.op === 'end') {
    const s = streams.get(m.sid);
    if (s !== undefined) s.key.fill(0);
    streams.delete(m.sid);
    return;
  }
  if (m.op === 'crash') throw new Error('crash requested by a test');
  const s = streams.get(m.sid);
  if (s === undefined) throw new Error('chunk for an unknown stream');
  parentPort.postMessage({ id: m.id, ok: m.op === 'seal' ? seal(s, m) : open(s, m) });
});
`;

interface Pending {
  resolve: (ok: boolean) => void;
  reject: (e: unknown) => void;
}

class CipherThread {
  readonly worker: Worker;
  online = false;
  dead = false;
  readonly pending = new Map<number, Pending>();

  constructor(onDeath: (t: CipherThread, cause: unknown) => void) {
    const w = new Worker(WORKER_SOURCE, { eval: true, name: 'firn-artifact-cipher' });
    this.worker = w;
    w.unref();
    w.on('online', () => {
      this.online = true;
    });
    w.on('message', (m: { id: number; ok: boolean }) => {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      p.resolve(m.ok);
    });
    w.on('error', (e) => onDeath(this, e));
    w.on('exit', (code) => onDeath(this, new Error(`exited with code ${code}`)));
  }
}

/** Slots of one stream: input and output rings of `slots` x `slotBytes` bytes. */
export interface ChunkRing {
  readonly slots: number;
  readonly slotBytes: number;
  readonly inp: Uint8Array;
  readonly out: Uint8Array;
}

let nextId = 0;
let nextSid = 0;

/** The process's cipher threads (see the module comment). */
class CipherPool {
  private threads: CipherThread[] = [];
  /** One ring kept from the last stream (wiped), so back-to-back streams do not fault in fresh pages. */
  private spare: ChunkRing | undefined;

  /** Threads that run now; starts missing ones. Empty while none is online yet. */
  ready(): CipherThread[] {
    while (this.threads.length < cipherPoolSettings.threads)
      this.threads.push(new CipherThread((t, cause) => this.died(t, cause)));
    return this.threads.filter((t) => t.online && !t.dead);
  }

  private died(t: CipherThread, cause: unknown): void {
    if (t.dead) return;
    t.dead = true;
    this.threads = this.threads.filter((x) => x !== t);
    const err = new FirnError(
      'E_INTERNAL',
      'an artifact cipher thread stopped before finishing a chunk; the operation was abandoned (retry it)',
      { cause },
    );
    const all = [...t.pending.values()];
    t.pending.clear();
    for (const p of all) p.reject(err);
  }

  takeRing(slots: number, slotBytes: number): ChunkRing {
    const s = this.spare;
    if (s !== undefined && s.slots === slots && s.slotBytes === slotBytes) {
      this.spare = undefined;
      return s;
    }
    return {
      slots,
      slotBytes,
      inp: new Uint8Array(new SharedArrayBuffer(slots * slotBytes)),
      out: new Uint8Array(new SharedArrayBuffer(slots * slotBytes)),
    };
  }

  /** Take back a ring no thread writes to any more; `used` bytes of each side are wiped first. */
  giveRing(r: ChunkRing, used: number): void {
    // set() from a zero block: fill() on shared memory goes element by element (decision 1260).
    const zero = new Uint8Array(Math.min(used, 1024 * 1024));
    for (const side of [r.inp, r.out])
      for (let o = 0; o < used; o += zero.length) side.set(zero.subarray(0, Math.min(zero.length, used - o)), o);
    this.spare = r;
  }

  /** Test hook: make every running thread throw, as a crash would. */
  crashForTest(): void {
    for (const t of this.threads) t.worker.postMessage({ op: 'crash' });
  }

  /** A stream's view of the pool: registers its key and ring with a thread on first use. */
  session(key: Uint8Array, aad: Uint8Array, ring: ChunkRing): PoolSession {
    return new PoolSession(this, key, aad, ring, nextSid++);
  }
}

/**
 * One stream's use of the pool. `run` ciphers the chunk in slot `slot` (input ring, `n` bytes of
 * plaintext for seal, of ciphertext || tag for open) into the same place in the output ring and
 * resolves true (open: false when the tag fails; the output is then zeroed), or rejects with
 * FirnError('E_INTERNAL') when the thread dies. `end` must be called once nothing is in flight.
 */
export class PoolSession {
  private readonly begun = new Set<CipherThread>();
  private next = 0;

  constructor(
    private readonly pool: CipherPool,
    private readonly key: Uint8Array,
    private readonly aad: Uint8Array,
    readonly ring: ChunkRing,
    private readonly sid: number,
  ) {}

  /** Whether a thread is online to take a chunk now (starts the threads on first call). */
  available(): boolean {
    return this.pool.ready().length > 0;
  }

  run(op: 'seal' | 'open', slot: number, n: number, nonce: Uint8Array): Promise<boolean> {
    const ts = this.pool.ready();
    if (ts.length === 0)
      return Promise.reject(new FirnError('E_INTERNAL', 'no artifact cipher thread is running'));
    let t = ts[0]!;
    for (const x of ts) if (x.pending.size < t.pending.size) t = x;
    const w = t.worker;
    if (!this.begun.has(t)) {
      this.begun.add(t);
      w.postMessage({
        op: 'begin',
        sid: this.sid,
        key: this.key,
        aad: this.aad,
        inp: this.ring.inp.buffer,
        out: this.ring.out.buffer,
      });
    }
    const id = nextId++;
    return new Promise<boolean>((resolve, reject) => {
      t.pending.set(id, { resolve, reject });
      if (t.pending.size === 1) w.ref();
      w.postMessage({
        op,
        sid: this.sid,
        id,
        off: slot * this.ring.slotBytes,
        n,
        nonce,
        slice: cipherPoolSettings.slice,
      });
    });
  }

  /** Forget the stream on its threads (they wipe their copy of the key) and return the ring. */
  end(usedSlots: number): void {
    for (const t of this.begun) if (!t.dead) t.worker.postMessage({ op: 'end', sid: this.sid });
    this.begun.clear();
    this.pool.giveRing(this.ring, Math.min(usedSlots, this.ring.slots) * this.ring.slotBytes);
  }
}

/** The process-wide pool. */
export const cipherPool = new CipherPool();

/** Slots for a stream of `slotBytes`-byte chunks: in flight + the two the consumer may hold. */
export function ringSlots(slotBytes: number): number {
  const want = cipherPoolSettings.inFlight + 2;
  return Math.max(3, Math.min(want, Math.floor(cipherPoolSettings.maxRingBytes / (2 * slotBytes))));
}
