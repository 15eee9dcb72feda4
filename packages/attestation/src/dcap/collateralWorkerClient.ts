import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type ErrorCode, FirnError } from '@firn/core';
import type { QuoteCollateralV3 } from './quoteCollateral.ts';

/**
 * The collateral half of a split cold DCAP verification (decision 1380), done by one persistent
 * worker thread: started on first use (not per call), kept unref'd while no call waits on it, one
 * message each way per call carrying bytes and plain data only. The worker keeps no cache of
 * inputs (it clears its caches after every job), so a live worker is not a cache.
 */

/** What the worker sends back for one job: the prepared collateral as plain data, or the error. */
export type WorkerReply =
  | { id: number; ok: true; prepared: unknown }
  | { id: number; ok: false; code: ErrorCode; message: string };

/** A job for the worker: the collateral parts (texts and byte arrays) and the trust anchors. */
export interface WorkerJob {
  id: number;
  collateral: QuoteCollateralV3;
  /** DER trust anchors; undefined for the pinned Intel root. */
  roots: Uint8Array[] | undefined;
}

/** How long a call waits for the worker's reply before it fails with E_TIMEOUT (ms). */
export const DEFAULT_WORKER_TIMEOUT_MS = 5000;

interface Pending {
  resolve: (prepared: unknown) => void;
  reject: (e: FirnError) => void;
  timer: NodeJS.Timeout;
}

/** One worker and the calls waiting on it (a stopped worker's calls never mix with its successor's). */
interface Running {
  w: Worker;
  pending: Map<number, Pending>;
}

let running: Running | undefined;
let nextId = 1;

/**
 * The worker: this module's sibling `collateralWorker`, as built JavaScript (the SDK's dist) or
 * as TypeScript source (this repository), which a small JavaScript entry loads through tsx's
 * loader registered in the worker itself (as `run-ts.mjs` does for the main thread).
 */
function newWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./collateralWorker.js', import.meta.url));
  // tsx as this repository resolves it (not from the working directory, which may be elsewhere).
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const api = pathToFileURL(join(dirname(pkg), 'dist', 'esm', 'api', 'index.mjs')).href;
  const entry = new URL('./collateralWorker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true });
}

/** Stop a worker (a later call starts a new one); every call waiting on it fails with `why`. */
function stop(r: Running, why: FirnError): void {
  if (running === r) running = undefined;
  for (const [id, p] of r.pending) {
    clearTimeout(p.timer);
    r.pending.delete(id);
    p.reject(why);
  }
  void r.w.terminate();
}

function started(): Running {
  if (running !== undefined) return running;
  const r: Running = { w: newWorker(), pending: new Map() };
  r.w.unref();
  r.w.on('message', (m: WorkerReply) => {
    const p = r.pending.get(m.id);
    if (p === undefined) return;
    clearTimeout(p.timer);
    r.pending.delete(m.id);
    if (r.pending.size === 0) r.w.unref();
    if (m.ok) p.resolve(m.prepared);
    else p.reject(new FirnError(m.code, m.message));
  });
  r.w.on('error', (e) =>
    stop(
      r,
      new FirnError('E_INTERNAL', 'the DCAP collateral worker failed; the verification was not completed', {
        cause: e,
      }),
    ),
  );
  r.w.on('exit', (code) =>
    stop(
      r,
      new FirnError(
        'E_INTERNAL',
        `the DCAP collateral worker exited (code ${code}); the verification was not completed`,
      ),
    ),
  );
  running = r;
  return r;
}

/**
 * Start the worker now, so the first split verification does not wait for its start (tens of
 * milliseconds). Idempotent.
 */
export function warmCollateralWorker(): void {
  started();
}

/**
 * Send one collateral (and the DER trust anchors, or undefined for the pinned Intel root) to the
 * worker and resolve with its prepared form (plain data, to be revived
 * by the caller). Rejects with the worker's own FirnError (the first failing collateral check,
 * same code and message as on the calling thread), E_TIMEOUT after `timeoutMs` (the worker is
 * then stopped, and started again on the next call), or E_INTERNAL when the worker fails or exits
 * before replying. Never resolves without a reply from the worker.
 */
export function prepareOnWorker(
  collateral: QuoteCollateralV3,
  roots: Uint8Array[] | undefined,
  timeoutMs: number,
): Promise<unknown> {
  const r = started();
  const w = r.w;
  const id = nextId++;
  return new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        stop(
          r,
          new FirnError(
            'E_TIMEOUT',
            `the DCAP collateral worker did not answer within ${timeoutMs} ms; the verification was not completed`,
          ),
        ),
      timeoutMs,
    );
    r.pending.set(id, { resolve, reject, timer });
    // Keep the process alive while a call waits on the worker.
    if (r.pending.size === 1) w.ref();
    try {
      w.postMessage({ id, collateral, roots } satisfies WorkerJob);
    } catch (e) {
      clearTimeout(timer);
      r.pending.delete(id);
      if (r.pending.size === 0) w.unref();
      reject(
        new FirnError('E_INTERNAL', 'the collateral could not be sent to the DCAP worker', { cause: e }),
      );
    }
  });
}

/** The running worker, if any (for operators' diagnostics and tests that stop it). */
export function collateralWorker(): Worker | undefined {
  return running?.w;
}
