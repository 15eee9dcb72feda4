import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { FirnError } from '@firn/core';
import { ecdsaVerifyDer, ecdsaVerifyRaw } from './x509.ts';

/** A check's outcome as signatureChecks.ts records it (its SignatureResult; not imported, so the two modules import one way). */
type SignatureResult = boolean | Promise<boolean>;

/**
 * One persistent thread that checks ECDSA-SHA256 signatures in the order they are sent
 * (decision 1450): the 'thread' mode of verifyDcapQuote. libuv's pool runs up to four checks at
 * once, and on a two-core machine those threads take turns with the calling thread, which holds
 * the critical path (parsing, key imports); one thread leaves the calling thread its core.
 *
 * Each check is one message: the key (an imported KeyObject, sent once per key and epoch: the
 * thread keeps it under a number; a KeyObject crosses threads by reference, not re-imported),
 * and the data and signature in one copied buffer. The thread drains every message waiting,
 * checks each in turn and answers once per drained batch. It keeps nothing but keys, and forgets
 * those when the epoch changes (clearSignatureThreadKeys, called by clearDcapCaches), except the
 * keys pinned with pinKeyOnThread (the program's own anchors, decision 1790), which it keeps while
 * it runs.
 *
 * The thread's source is plain JavaScript evaluated in the worker (node builtins only), so it runs
 * the same from the repository's TypeScript and from the built package.
 */
const WORKER_SOURCE = `
const { parentPort, receiveMessageOnPort, workerData } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const MAX_KEYS = 4096;
const claims = new Int32Array(workerData.claims);
const RING = claims.length;
let epoch = -1;
const keys = new Map();
const pinned = new Map();
const points = new Map();
/** The P-256 key of the 64-byte point at the start of b (imported once an epoch), or null if it is none. */
function pointKey(b) {
  const x = Buffer.from(b, 0, 32).toString('base64url');
  const y = Buffer.from(b, 32, 32).toString('base64url');
  const id = x + y;
  let key = points.get(id);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
    } catch {
      return null;
    }
    if (points.size >= MAX_KEYS) points.clear();
    points.set(id, key);
  }
  return key;
}
function check(m) {
  if (m.e !== epoch) {
    keys.clear();
    points.clear();
    epoch = m.e;
  }
  if (m.q === 1) {
    if (Atomics.compareExchange(claims, m.i % RING, 0, 1) !== 0) return 3;
    const key = pointKey(m.b);
    if (key === null) return 4;
    const b = new Uint8Array(m.b, 64);
    try {
      const ok = verify('sha256', b.subarray(0, m.n), { key, dsaEncoding: m.d ? 'ieee-p1363' : 'der' }, b.subarray(m.n));
      return ok ? 1 : 0;
    } catch {
      return 0;
    }
  }
  const held = m.p === 1 ? pinned : keys;
  let key = held.get(m.k);
  if (m.key !== undefined) {
    if (held.size >= MAX_KEYS) held.clear();
    key = m.key;
    held.set(m.k, key);
  }
  // A check the calling thread has taken over (it waits for none of the thread's): skipped.
  if (Atomics.compareExchange(claims, m.i % RING, 0, 1) !== 0) return 3;
  if (key === undefined) return 2;
  const b = new Uint8Array(m.b);
  try {
    const ok = verify('sha256', b.subarray(0, m.n), { key, dsaEncoding: m.d ? 'ieee-p1363' : 'der' }, b.subarray(m.n));
    return ok ? 1 : 0;
  } catch {
    return 0;
  }
}
parentPort.on('message', (first) => {
  const ids = [first.i];
  const ok = [check(first)];
  for (let r = receiveMessageOnPort(parentPort); r !== undefined; r = receiveMessageOnPort(parentPort)) {
    ids.push(r.message.i);
    ok.push(check(r.message));
  }
  parentPort.postMessage({ ids, ok });
});
`;

interface Pending {
  resolve(ok: boolean): void;
  reject(e: Error): void;
  /** The check itself, for the calling thread to make when it takes the job over. */
  run(): boolean;
}

/**
 * One slot per job (by id modulo the ring): 0 while queued, 1 once the thread or the calling
 * thread has claimed it (Atomics.compareExchange), so each check is made exactly once. Jobs are
 * claimed in order by the thread, and a taken-over job is answered at once, so no job is still
 * queued when its slot comes round again.
 */
const RING = 1 << 16;
const claims = new Int32Array(new SharedArrayBuffer(4 * RING));

/**
 * One check as sent: job id, epoch, key id, key (first use in the epoch, or for a pinned key its
 * first use on this thread), whether the id is a pinned key's, encoding, data length,
 * data||signature.
 */
interface Job {
  i: number;
  e: number;
  k: number;
  key?: KeyObject;
  p?: 1;
  /** 1: no key id; `b` starts with the key's 64-byte P-256 point, which the thread imports. */
  q?: 1;
  d: 0 | 1;
  n: number;
  b: ArrayBuffer;
}

let worker: Worker | undefined;
let pending = new Map<number, Pending>();
let nextJob = 0;
/**
 * Jobs below this id the current thread has answered (it answers every message, skipped ones too,
 * in order). A job taken over here leaves `pending` at once but its message is still queued there:
 * the in-flight bound counts messages the thread has not answered, not pending promises.
 */
let answeredBelow = 0;
let epoch = 0;
let keyIds = new WeakMap<KeyObject, number>();
let nextKey = 0;
/** Keys sent to the thread in this epoch: at MAX_THREAD_KEYS a new epoch starts (both sides forget). */
let keysSent = 0;
/** The most keys the thread holds (its MAX_KEYS): it never has to drop one the calling thread counts on. */
const MAX_THREAD_KEYS = 4096;
/** Pinned keys by id (pinKeyOnThread); ids of their own, never reused. */
const pinnedIds = new Map<KeyObject, number>();
/** The most keys pinKeyOnThread takes: the program pins its anchors' few, nothing from inputs. */
const MAX_PINNED_KEYS = 16;
/** Pinned key ids the current thread has been sent (it holds them until it stops). */
let pinnedSent = new Set<number>();

/**
 * Keep `key` on the signature thread across clearSignatureThreadKeys (decision 1790): for the
 * program's own trust anchors (the pinned Intel root and intermediates), whose keys are no input's,
 * so that a cold call does not send them again and the thread does not rebuild them. Past
 * MAX_PINNED_KEYS (16) a key is not pinned and is sent per epoch like any other.
 */
export function pinKeyOnThread(key: KeyObject): void {
  if (pinnedIds.has(key) || pinnedIds.size >= MAX_PINNED_KEYS) return;
  pinnedIds.set(key, pinnedIds.size);
}

function threadFailed(w: Worker, why: string): void {
  if (worker !== w) return;
  worker = undefined;
  // The messages queued to that thread are gone with it; the next thread starts from here.
  answeredBelow = nextJob;
  keyIds = new WeakMap();
  keysSent = 0;
  pinnedSent = new Set();
  const lost = pending;
  pending = new Map();
  for (const p of lost.values())
    p.reject(new FirnError('E_INTERNAL', `DCAP signature thread stopped (${why}); no verdict was reached`));
  void w.terminate();
}

function thread(): Worker {
  if (worker !== undefined) return worker;
  const w = new Worker(WORKER_SOURCE, {
    eval: true,
    execArgv: [],
    stdout: false,
    stderr: false,
    workerData: { claims: claims.buffer },
  });
  w.on('message', (m: { ids: number[]; ok: number[] }) => {
    if (worker !== w) return;
    for (const id of m.ids) if (id >= answeredBelow) answeredBelow = id + 1;
    for (let i = 0; i < m.ids.length; i++) {
      const p = pending.get(m.ids[i]!);
      // Undefined: taken over and answered here already (the thread answered 3, skipped).
      if (p === undefined) continue;
      pending.delete(m.ids[i]!);
      // 2: the thread did not hold the key (it forgot it) and claimed the check without making it;
      // 4: the point it was sent is no P-256 key: made here, the same check on the bytes queued
      // with the key imported here (never a verdict without a check; an import error recorded).
      if (m.ok[i] === 2 || m.ok[i] === 4) {
        let ok: boolean;
        try {
          ok = p.run();
        } catch (e) {
          p.reject(e instanceof Error ? e : new FirnError('E_INTERNAL', 'DCAP signature check failed'));
          continue;
        }
        p.resolve(ok);
      } else p.resolve(m.ok[i] === 1);
    }
    if (pending.size === 0) w.unref();
  });
  w.on('error', (e) => threadFailed(w, e instanceof Error ? e.message : 'error'));
  w.on('exit', (code) => threadFailed(w, `exit ${code}`));
  w.unref();
  worker = w;
  return w;
}

/**
 * Check an ECDSA-SHA256 signature on the signature thread: DER signatures when `dsaEncoding` is
 * 'der', raw r||s (64 bytes) when 'ieee-p1363' (a raw signature of another length is false at
 * once, as ecdsaVerifyOnPool). The data and signature are copied when the check is sent, so later
 * changes to the caller's buffers do not affect it. Resolves true or false; rejects with
 * FirnError E_INTERNAL only if the thread stops before answering (never a verdict). The promise is
 * marked handled, so a check whose result is never awaited cannot fail the process.
 */
export function ecdsaVerifyOnThread(
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
  dsaEncoding: 'der' | 'ieee-p1363',
): boolean | Promise<boolean> {
  if (dsaEncoding === 'ieee-p1363' && signature.length !== 64) return false;
  const w = threadForCheck();
  // No thread to be had (or a backlog): checked here and now, the same check.
  if (w === undefined) return verifyHere(key, data, signature, dsaEncoding);
  const b = new Uint8Array(data.length + signature.length);
  b.set(data, 0);
  b.set(signature, data.length);
  const i = nextJob++;
  Atomics.store(claims, i % RING, 0);
  const pk = pinnedIds.get(key);
  let k = pk ?? keyIds.get(key);
  if (k === undefined && keysSent >= MAX_THREAD_KEYS) clearSignatureThreadKeys();
  const job: Job = { i, e: epoch, k: k ?? 0, d: dsaEncoding === 'der' ? 0 : 1, n: data.length, b: b.buffer };
  if (pk !== undefined) {
    job.p = 1;
    if (!pinnedSent.has(pk)) {
      pinnedSent.add(pk);
      job.key = key;
    }
  } else if (k === undefined) {
    k = nextKey++;
    keysSent++;
    keyIds.set(key, k);
    job.k = k;
    job.key = key;
  }
  const d = b.subarray(0, data.length);
  const sig = b.subarray(data.length);
  return enqueue(w, job, () => verifyHere(key, d, sig, dsaEncoding));
}

/** The signature thread for one more check, or undefined when none can be had or too many are in flight. */
function threadForCheck(): Worker | undefined {
  // Half the ring of messages unanswered by the thread at most (taken-over ones included), so a
  // slot never comes round while its message is still queued.
  if (nextJob - answeredBelow >= RING / 2) return undefined;
  try {
    return thread();
  } catch {
    return undefined;
  }
}

function verifyHere(key: KeyObject, data: Uint8Array, sig: Uint8Array, enc: 'der' | 'ieee-p1363'): boolean {
  return enc === 'der' ? ecdsaVerifyDer(key, data, sig) : ecdsaVerifyRaw(key, data, sig);
}

/**
 * Send `job` to `w` and return its result's promise (marked handled); `run` makes the same check on
 * this thread when the thread answers that it could not, or when this thread takes it over.
 */
function enqueue(w: Worker, job: Job, run: (p: Promise<boolean>) => boolean): Promise<boolean> {
  const p: Promise<boolean> = new Promise<boolean>((resolve, reject) => {
    if (pending.size === 0) w.ref();
    pending.set(job.i, { resolve, reject, run: () => run(p) });
  });
  p.catch(() => {});
  jobOf.set(p, job.i);
  // Copied, not transferred: this thread keeps the bytes to make the check itself if it takes it over.
  w.postMessage(job);
  return p;
}

/** The job id behind each promise ecdsaVerifyOnThread returned (for takeOver). */
const jobOf = new WeakMap<Promise<boolean>, number>();

/** Why a check of ecdsaVerifyPointOnThread failed without a signature check: its key's import error. */
const keyErrors = new WeakMap<Promise<boolean>, unknown>();

/**
 * The error the key of a check of ecdsaVerifyPointOnThread met when imported on the calling thread
 * (its `importHere` threw), once the check has resolved false for that reason; else undefined.
 */
export function keyErrorOf(result: SignatureResult): unknown {
  return typeof result === 'boolean' ? undefined : keyErrors.get(result);
}

/**
 * Check an ECDSA-SHA256 signature under the P-256 key whose uncompressed point (x||y, 64 bytes) is
 * `point`, importing the key on the signature thread (decision 1790): a cold verification's own
 * keys (the PCK key, the attestation key) are then imported beside its other checks, not on the
 * calling thread. The thread keeps keys it imported until the epoch changes
 * (clearSignatureThreadKeys). When the thread cannot import the point, or the calling thread takes
 * the check over, the key comes from `importHere` on this thread, given the point as copied when
 * the check was queued (never the caller's bytes, which may have changed since): if that throws,
 * the check resolves false and keyErrorOf(result) gives what it threw, so the caller can report the
 * error the synchronous order reports (the import's, not a bad signature). Otherwise as
 * ecdsaVerifyOnThread.
 */
export function ecdsaVerifyPointOnThread(
  point: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  dsaEncoding: 'der' | 'ieee-p1363',
  importHere: (point: Uint8Array) => KeyObject,
): boolean | Promise<boolean> {
  if (dsaEncoding === 'ieee-p1363' && signature.length !== 64) return false;
  const w = point.length === 64 ? threadForCheck() : undefined;
  if (w === undefined) return verifyHere(importHere(point), data, signature, dsaEncoding);
  const b = new Uint8Array(64 + data.length + signature.length);
  b.set(point, 0);
  b.set(data, 64);
  b.set(signature, 64 + data.length);
  const i = nextJob++;
  Atomics.store(claims, i % RING, 0);
  const job: Job = { i, e: epoch, k: 0, q: 1, d: dsaEncoding === 'der' ? 0 : 1, n: data.length, b: b.buffer };
  const d = b.subarray(64, 64 + data.length);
  const sig = b.subarray(64 + data.length);
  // The point as copied now: the caller's bytes may change before this runs (after the call returned).
  const pt = b.subarray(0, 64);
  return enqueue(w, job, (p) => {
    let key: KeyObject;
    try {
      key = importHere(pt);
    } catch (e) {
      keyErrors.set(p, e);
      return false;
    }
    return verifyHere(key, d, sig, dsaEncoding);
  });
}

/**
 * Make, on the calling thread and now, the checks among `results` that the signature thread has
 * not started, latest first (the thread works from the earliest): called by a verification that
 * has nothing left to do but wait, so both threads finish together. A check is made exactly once
 * (the slot is claimed atomically by whichever thread comes first) and its promise resolves with
 * the same result either way. Results not from ecdsaVerifyOnThread are left alone.
 */
export function takeOver(results: readonly SignatureResult[]): void {
  const ids: number[] = [];
  for (const r of results) {
    if (typeof r === 'boolean') continue;
    const i = jobOf.get(r);
    if (i !== undefined && pending.has(i)) ids.push(i);
  }
  ids.sort((x, y) => y - x);
  for (const i of ids) {
    const p = pending.get(i);
    if (p === undefined || Atomics.compareExchange(claims, i % RING, 0, 1) !== 0) continue;
    pending.delete(i);
    p.resolve(p.run());
  }
  if (pending.size === 0) worker?.unref();
}

/**
 * Forget the keys the signature thread holds (clearDcapCaches): keys are sent again from the next
 * check on, and the thread drops every key of an older epoch at its next message.
 */
export function clearSignatureThreadKeys(): void {
  epoch++;
  keysSent = 0;
  keyIds = new WeakMap();
}

/** Stop the signature thread (tests); checks in flight fail E_INTERNAL, the next check starts a new one. */
export async function stopSignatureThread(): Promise<void> {
  const w = worker;
  if (w === undefined) return;
  threadFailed(w, 'stopped');
  await w.terminate();
}
