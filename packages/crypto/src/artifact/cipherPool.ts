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

/** FIRN_ARTIFACT_THREADS: 1-4 turns the threads on with that many, 0 keeps them off; anything else is ignored. */
const ENV_THREADS = ((v) => (Number.isInteger(v) && v >= 0 && v <= 4 ? v : undefined))(
  Number(process.env.FIRN_ARTIFACT_THREADS ?? Number.NaN),
);

/** Tunables; tests and the benchmark flip `enabled` to compare with the inline cipher. */
export const cipherPoolSettings = {
  /**
   * Use the threads at all. Off by default (every chunk ciphered inline, decision 1260): the
   * threads cost each process about 9 MiB per thread plus the rings and the threads' garbage,
   * which breaks `firn artifact`'s 64 MiB memory bound (decision 1370). On when the environment
   * sets FIRN_ARTIFACT_THREADS to 1-4 and there are at least 2 cores.
   */
  enabled: availableParallelism() >= 2 && ENV_THREADS !== undefined && ENV_THREADS > 0,
  /** Threads in the pool (FIRN_ARTIFACT_THREADS; 2 when unset: one per core here, the calling thread mostly waits). */
  threads: ENV_THREADS || 2,
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

/**
 * The thread's source, run by `new Worker(..., { eval: true })`: no loader, no host package. It
 * loads its modules with import(), which works whether Node evaluates it as CommonJS or (under a
 * module loader such as tsx) as a module, and says 'ready' once it listens.
 */
const WORKER_SOURCE = `
Promise.all([import('node:worker_threads'), import('node:crypto')]).then(([wt, nc]) => {
const { parentPort } = wt;
const { createCipheriv, createDecipheriv } = nc;
const TAG = ${CHUNK_TAG_BYTES};
const streams = new Map();
let crashNext = false;
function seal(s, m) {
  const c = createCipheriv('aes-256-gcm', s.key, m.nonce, { authTagLength: TAG });
  c.setAAD(s.aad);
  const out = s.outs[m.slot];
  const end = m.off + m.n;
  for (let o = m.off; o < end; ) {
    const e = Math.min(end, o + m.slice);
    const ct = c.update(s.inp.subarray(o, e));
    if (ct.length > 0) out.fill(ct, o - m.off, o - m.off + ct.length);
    o = e;
  }
  c.final();
  out.fill(c.getAuthTag(), m.n, m.n + TAG);
  return true;
}
function open(s, m) {
  // Decrypted into this thread's own buffers; only a verified chunk reaches the shared slot.
  const ctEnd = m.off + m.n - TAG;
  const d = createDecipheriv('aes-256-gcm', s.key, m.nonce, { authTagLength: TAG });
  d.setAAD(s.aad);
  d.setAuthTag(s.inp.slice(ctEnd, ctEnd + TAG));
  const pts = [];
  for (let o = m.off; o < ctEnd; ) {
    const e = Math.min(ctEnd, o + m.slice);
    pts.push(d.update(s.inp.subarray(o, e)));
    o = e;
  }
  let ok = true;
  try {
    d.final();
  } catch {
    ok = false;
  }
  const out = s.outs[m.slot];
  let at = 0;
  for (const pt of pts) {
    if (ok && pt.length > 0) out.fill(pt, at, at + pt.length);
    at += pt.length;
    pt.fill(0);
  }
  return ok;
}
parentPort.on('message', (m) => {
  if (m.op === 'begin') {
    streams.set(m.sid, { key: m.key, aad: m.aad, inp: new Uint8Array(m.inp), outs: m.outs.map((b) => Buffer.from(b)) });
    return;
  }
  if (m.op === 'end') {
    const s = streams.get(m.sid);
    if (s !== undefined) s.key.fill(0);
    streams.delete(m.sid);
    return;
  }
  if (m.op === 'crash') {
    crashNext = true;
    return;
  }
  if (crashNext) throw new Error('crash requested by a test');
  const s = streams.get(m.sid);
  if (s === undefined) throw new Error('chunk for an unknown stream');
  parentPort.postMessage({ id: m.id, ok: m.op === 'seal' ? seal(s, m) : open(s, m) });
  // Each update() output is a dead buffer that only a collection frees, and V8 collects for
  // external memory only every 64 MiB of it: a thread alone would hold tens of MiB. A little
  // short-lived heap per chunk (1/64 of its bytes) in a small young generation makes a scavenge,
  // which frees those buffers, come every few chunks (decision 1370).
  const junk = new Array(m.n >> 6);
  for (let i = 0; i < junk.length; i++) junk[i] = i + 0.5;
});
parentPort.postMessage({ ready: true });
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
    // execArgv []: the thread needs no loader (tsx would cost it a second start-up). A small young
    // generation: see the scavenge note in WORKER_SOURCE.
    const w = new Worker(WORKER_SOURCE, {
      eval: true,
      name: 'firn-artifact-cipher',
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    this.worker = w;
    w.on('message', (m: { id: number; ok: boolean; ready?: true }) => {
      if (m.ready === true) {
        this.online = true;
        return;
      }
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      p.resolve(m.ok);
    });
    w.on('error', (e) => onDeath(this, e));
    w.on('exit', (code) => onDeath(this, new Error(`exited with code ${code}`)));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    w.unref();
  }
}

/**
 * Slots of one stream: an input ring of `slots` x `slotBytes` bytes, and one output buffer per
 * slot (its own SharedArrayBuffer: a piece handed out reaches only its own chunk through `.buffer`).
 */
export interface ChunkRing {
  readonly slots: number;
  readonly slotBytes: number;
  readonly inp: Uint8Array;
  readonly outs: readonly Uint8Array[];
  /** `inp` as a Buffer: its fill() copies with memcpy (TypedArray set() on shared memory is about 3x slower). */
  readonly inpBuf: Buffer;
}

/** Copy `src` into `dst` at byte `at` with memcpy (`dst`: a Buffer over the destination). */
export function copyBytes(dst: Buffer, src: Uint8Array, at: number): void {
  if (src.length > 0) dst.fill(src, at, at + src.length);
}

/** Copy `pieces` into the ring's input at byte `at` (memcpy; see ChunkRing.inpBuf); returns the end. */
export function copyIn(r: ChunkRing, pieces: readonly Uint8Array[], at: number): number {
  let o = at;
  for (const p of pieces) {
    if (p.length === 0) continue;
    r.inpBuf.fill(p, o, o + p.length);
    o += p.length;
  }
  return o;
}

let nextId = 0;
let nextSid = 0;

/** The process's cipher threads (see the module comment). */
class CipherPool {
  private threads: CipherThread[] = [];
  /** Chunks handed to a thread since the process started (tests check the path they cover). */
  chunks = 0;

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

  /**
   * A fresh ring per stream. Rings are not reused across streams: a consumer may still hold views
   * of the last chunks' output slots after the stream ended (the view contract), so an output
   * side is only dropped, never rewritten, once its stream is over.
   */
  newRing(slots: number, slotBytes: number): ChunkRing {
    const inp = new Uint8Array(new SharedArrayBuffer(slots * slotBytes));
    const outs = Array.from({ length: slots }, () => new Uint8Array(new SharedArrayBuffer(slotBytes)));
    return { slots, slotBytes, inp, outs, inpBuf: Buffer.from(inp.buffer) };
  }

  /** Resolves once `cipherPoolSettings.threads` threads run (tests, benchmarks' warm-up). */
  async started(): Promise<void> {
    while (this.ready().length < cipherPoolSettings.threads) await new Promise((r) => setTimeout(r, 5));
  }

  /** Test hook: every running thread throws on its next chunk, as a crash would. */
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
        outs: this.ring.outs.map((o) => o.buffer),
      });
    }
    const id = nextId++;
    this.pool.chunks++;
    return new Promise<boolean>((resolve, reject) => {
      t.pending.set(id, { resolve, reject });
      if (t.pending.size === 1) w.ref();
      w.postMessage({
        op,
        sid: this.sid,
        id,
        slot,
        off: slot * this.ring.slotBytes,
        n,
        nonce,
        slice: cipherPoolSettings.slice,
      });
    });
  }

  /**
   * Forget the stream on its threads (they wipe their copy of the key) and wipe the input side
   * (memset through Buffer fill(); TypedArray fill() on shared memory goes element by element).
   * Call only once no chunk is in flight. The output side is left to the consumer's views.
   */
  end(usedSlots: number): void {
    for (const t of this.begun) if (!t.dead) t.worker.postMessage({ op: 'end', sid: this.sid });
    this.begun.clear();
    const used = Math.min(usedSlots, this.ring.slots) * this.ring.slotBytes;
    if (used > 0) this.ring.inpBuf.fill(0, 0, used);
  }
}

/** The process-wide pool. */
export const cipherPool = new CipherPool();

/** Slots for a stream of `slotBytes`-byte chunks: in flight + the two the consumer may hold. */
export function ringSlots(slotBytes: number): number {
  const want = cipherPoolSettings.inFlight + 2;
  return Math.max(3, Math.min(want, Math.floor(cipherPoolSettings.maxRingBytes / (2 * slotBytes))));
}
