import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appErrorBody, createWorkloadContext, type SignDataOptions, type SignedDataRecord } from '@firn/app';
import { type ErrorCode, FirnError, isFirnError, toErrorBody } from '@firn/core';
import { loadMlEngines, loadOnnxModel, type TensorMap, warmTraining } from '@firn/ml';
import type { Workload, WorkloadInput, WorkloadResult, WorkloadRunContext } from '../jobs/workload.ts';
import { removeScratchTree, removeStaleScratch, scratchPrefix } from './mlScratch.ts';
import {
  type ServedSessionEndpoint,
  type ServeSessionParams,
  type SessionEndpointAddress,
  type SessionEndpointTranscript,
  serveSessionEndpoint,
} from './sessionEndpoint.ts';

/**
 * Where a job's ML runtime runs (docs/decisions/0851-ml-runtime-process.md). The enclave process
 * holds the signing, KEM and sealing keys; onnxruntime's native parser and TensorFlow.js run in a
 * separate child process that receives only the job's decrypted inputs and params, never a key,
 * the platform file or the enclave's environment. A crash there (a native fault, an abort, an
 * out-of-memory kill) fails that job with E_RUNTIME_CRASHED; the enclave keeps serving.
 */

/** A tensor as it crosses the runtime boundary (structured clone). */
export interface PlainTensor {
  type: string;
  dims: readonly number[];
  data: unknown;
}

/** A model loaded in a runtime for a warm session. */
export interface RuntimeModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(inputs: TensorMap): Promise<Record<string, PlainTensor>>;
  release(): Promise<void>;
  /**
   * Make the runtime holding this model the session's direct endpoint (sessionEndpoint.ts,
   * docs/decisions/1240-direct-session-endpoint.md). Absent where the runtime cannot (in-process).
   */
  serveSession?(p: ServeSessionParams): Promise<ServedSession>;
}

/** A session served by a runtime (see serveSessionEndpoint), as the enclave process drives it. */
export interface ServedSession {
  address: SessionEndpointAddress;
  /** Milliseconds since the endpoint last answered a request. */
  idleMs(): Promise<number>;
  /** End serving (checking the requester's close message when given) and report the transcript. */
  finish(auth?: Uint8Array): Promise<SessionEndpointTranscript>;
}

export interface MlRuntime {
  /**
   * Run one workload (job kind) to completion; progress events are forwarded as they come and
   * `signData` calls are answered by `ctx.signData` (in the enclave process, which holds the key).
   * A workload's failure is a FirnError with an app code (`appErrorBody`).
   */
  runWorkload(kind: string, ctx: WorkloadRunContext, opts?: RunWorkloadOptions): Promise<WorkloadResult>;
  /** Load an ONNX model that stays loaded until `release` (one runtime per model). */
  loadModel(bytes: Uint8Array): Promise<RuntimeModel>;
  /**
   * The job handler has answered the job that ran here: a runtime that keeps a spare child starts
   * the next one now, after the answer, so the start never delays a job (optional).
   */
  jobFinished?(): void;
  /**
   * A job of `kind` will run here soon (its request passed the checks that need no input): a
   * runtime with a spare child may take it now, so the hand-over round trip overlaps the job's
   * remaining checks and input decryption. A child taken this way serves only that job's
   * `runWorkload` of the same kind; it is stopped by `jobFinished` when the job ends before it
   * runs (optional).
   */
  prepareJob?(kind: string): void;
}

/** Per-run limits the enclave sets. */
export interface RunWorkloadOptions {
  /**
   * Milliseconds the workload may run. When they pass, the run fails with E_TIMEOUT; the child
   * runtime is killed (SIGKILL), so a workload that hangs or spins ends at the job's deadline.
   */
  timeoutMs?: number;
}

/** The E_TIMEOUT of a run that passed its deadline. */
function timeoutError(ms: number): FirnError {
  return new FirnError(
    'E_TIMEOUT',
    `the workload did not finish within ${Math.round(ms / 1000)} s (the job's deadline or the enclave's cap); it was stopped`,
  );
}

/** Reject with E_TIMEOUT after `ms` (and call `onTimeout`); `clear` stops the timer. */
function deadline(
  ms: number | undefined,
  onTimeout: () => void = () => undefined,
): { promise: Promise<never>; clear: () => void; error?: FirnError } {
  const state: { promise: Promise<never>; clear: () => void; error?: FirnError } = {
    promise: new Promise<never>(() => undefined),
    clear: () => undefined,
  };
  if (ms === undefined) return state;
  let timer: NodeJS.Timeout | undefined;
  state.promise = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        state.error = timeoutError(ms);
        onTimeout();
        reject(state.error);
      },
      Math.max(0, ms),
    );
  });
  // A run that settles first leaves this promise pending forever; nothing awaits it then.
  state.promise.catch(() => undefined);
  state.clear = () => clearTimeout(timer);
  return state;
}

const unknownKind = (kind: string) => new FirnError('E_UNSUPPORTED', `unknown job kind ${kind.slice(0, 64)}`);

/** Runs workloads in the calling process (unit tests, and tools that hold no keys). */
export function inProcessRuntime(
  workloads: Record<string, Workload>,
  load: (bytes: Uint8Array) => Promise<RuntimeModel> = (b) => loadOnnxModel(b, { intraOpThreads: 1 }),
): MlRuntime {
  return {
    async runWorkload(kind, ctx, opts = {}) {
      const w = Object.hasOwn(workloads, kind) ? workloads[kind] : undefined;
      if (w === undefined) throw unknownKind(kind);
      // In this process a workload cannot be killed: past its deadline its result is ignored.
      const d = deadline(opts.timeoutMs);
      try {
        return await Promise.race([w(createWorkloadContext(ctx)), d.promise]);
      } catch (e) {
        if (e !== undefined && e === d.error) throw e;
        const b = appErrorBody(e);
        throw new FirnError(b.code, b.message);
      } finally {
        d.clear();
      }
    },
    loadModel: load,
  };
}

// ---- the protocol between the enclave and its runtime child (structured clone over IPC) ----

type ToWorker =
  | {
      id: number;
      op: 'run';
      kind: string;
      params: Record<string, unknown>;
      inputs: WorkloadInput[];
      now: number;
      /** The per-job seed of `ctx.random` (derived in the enclave process; no key). */
      randomSeed?: Uint8Array;
    }
  | { id: number; op: 'load'; bytes: Uint8Array }
  /**
   * A spare child: load every runtime file a job can load (loadMlEngines), before any job is
   * known (no input, no key); the parent checks the image once this is answered.
   */
  | { id: number; op: 'engines' }
  /** A spare child: compile the engines' first runs on synthetic data (training: warmTraining). */
  | { id: number; op: 'warm'; training: boolean }
  /**
   * A job is about to be handed over: stop any warm-up at its next epoch boundary and answer once
   * idle (the parent also learns the spare is alive and answering).
   */
  | { id: number; op: 'take' }
  | { id: number; op: 'infer'; inputs: TensorMap }
  | { id: number; op: 'release' }
  | { id: number; op: 'serve'; params: ServeSessionParams }
  | { id: number; op: 'finish'; auth?: Uint8Array }
  | { id: number; op: 'idle' }
  /** The parent's answer to a `signData` request of run `id` (call = the child's counter). */
  | {
      id: number;
      op: 'signed';
      call: number;
      record?: SignedDataRecord;
      error?: { code: string; message: string };
    };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type FromWorker =
  | { id: number; progress: Record<string, unknown> }
  | { id: number; signData: { call: number; digest: Uint8Array; topic: string } }
  | { id: number; result: unknown }
  | { id: number; error: { code: string; message: string } };

export interface ChildProcessRuntimeOptions {
  /** Module the child runs (the image's worker entry `app/worker.mjs`, or a test entry). */
  modulePath: string;
  /** Arguments after the module (the image's worker entry takes none). */
  args?: string[];
  /** Node flags for the child (tests pass `--import tsx`); default none. */
  execArgv?: string[];
  /** Called with each child's pid when it starts (tests use it to crash the child). */
  onSpawn?: (pid: number) => void;
  /**
   * Folder under which each child gets its private HOME and TMPDIR (a fresh 0700 folder per
   * child, named by this process's pid and pid namespace: mlScratch.ts, removed when the child
   * ends). The runtime first removes the folders a dead enclave process of this host left there
   * (removeStaleScratch). Default: this process's os.tmpdir().
   */
  scratchRoot?: string;
  /**
   * Runs before every child is forked, and again once a spare child has loaded every runtime file
   * (before it may be handed a job); a throw refuses the job, or drops the spare. The enclave
   * re-checks its image here: a child loads the entry, onnxruntime, TensorFlow.js's WebAssembly
   * and the Node binary from disk after the check at start
   * (docs/decisions/1330-spare-child-checked-after-load.md).
   */
  beforeSpawn?: () => void;
  /**
   * Keep one child started and warmed ahead of the next job (docs/decisions/1280-spare-ml-child.md):
   * started from the same entry, with the same environment (its own HOME and TMPDIR only), when the runtime is created and
   * again after each job that took it; it loads every ML engine, then the image is checked again
   * (`beforeSpawn`), then it warms; handed to one job only (once checked, warm or not) and stopped
   * when that job ends, never reused (decision 1330). Default false (every job starts its own child).
   */
  spare?: boolean;
}

/** The workload kind whose spare children warm the training engine (the first-party training app). */
const TRAINING_KIND = 'training';

/**
 * V8 flags of a child that runs training jobs (docs/decisions/1440-training-child-heap-and-wasm-tiers.md),
 * tuning only how V8 manages memory and compiles code, never what runs:
 *
 * - `--min-semi-space-size=16` (MiB): the young generation starts at the size a long-lived
 *   process grows it to (V8's default starts small and grows to at most 16 MiB; the maximum is left
 *   at its default, the plaintext peer's). A training loop allocates short-lived objects (tfjs tensor
 *   handles, closures, per-step arrays) at a steady rate, so a fresh child ran ~35 scavenges in a
 *   banknote job against ~21 in a long-lived process; with this, ~21, as the peer.
 * - `--no-wasm-dynamic-tiering`: every WebAssembly function is compiled by TurboFan in the
 *   background right after its first (Liftoff) compilation, so the engine's kernels reach their
 *   optimized code during the spare's warm-up instead of tiering up by call counts during the job
 *   (12 kernels were still tiered up during a banknote job, one for 33 ms of compilation, running
 *   in Liftoff code meanwhile; with this, none).
 *
 * Results are unchanged (WebAssembly and JavaScript have the same semantics in every tier: the
 * weights are bit-identical, mlRuntime.test.ts and the training bench) and no code is loaded.
 */
export const TRAINING_CHILD_V8_FLAGS: readonly string[] = [
  '--min-semi-space-size=16',
  '--no-wasm-dynamic-tiering',
];

/** Longest a spare child may take to start, load its engines and warm before it is dropped, ms. */
export const SPARE_WARM_TIMEOUT_MS = 60_000;
/**
 * Longest a spare may take to answer the hand-over (`take`: stop warming, answer) before a job,
 * ms; one that does not is dropped and the job starts its own child.
 */
export const SPARE_PING_TIMEOUT_MS = 10_000;

/** The child-process runtime, with the spare child's controls. */
export interface ChildProcessMlRuntime extends MlRuntime {
  /**
   * Resolves once the spare child (when one is starting) has loaded its engines, been checked and
   * finished its warm-up, or failed to; after one macrotask when there is no spare (a start that
   * `jobFinished` has scheduled by then is waited for). For tools and benchmarks that wait for an
   * idle node.
   */
  spareReady(): Promise<void>;
  /** Stop the spare child and start no more; jobs after this start their own child. */
  close(): void;
}

/** One child process; requests are matched to answers by id. */
class RuntimeChild {
  private readonly child: ChildProcess;
  private readonly pending = new Map<
    number,
    {
      resolve: (v: unknown) => void;
      reject: (e: unknown) => void;
      progress?: (e: Record<string, unknown>) => void;
      signData?: (digest: Uint8Array, opts: SignDataOptions) => Promise<SignedDataRecord>;
    }
  >();
  private nextId = 1;
  private exited: FirnError | undefined;
  /** The child's private HOME and TMPDIR, removed when it ends. */
  readonly scratch: string;

  /**
   * `v8Flags`: heap-sizing flags for this child (TRAINING_CHILD_V8_FLAGS for a child that will
   * train), before the runtime's own `execArgv`.
   */
  constructor(opts: ChildProcessRuntimeOptions, v8Flags: readonly string[] = []) {
    // No environment (but its private HOME and TMPDIR below), no inherited stdio: the child gets
    // nothing but what each request carries, and
    // nothing it prints (a runtime's diagnostics may name model internals) reaches the host's logs.
    opts.beforeSpawn?.();
    // Its own HOME and TMPDIR (nothing else of an environment): a runtime that writes caches or
    // temp files (os.tmpdir(), os.homedir()) writes them here, never in a folder shared with the
    // host or another job's child, and the folder goes when the child ends.
    const scratch = mkdtempSync(join(opts.scratchRoot ?? tmpdir(), scratchPrefix()));
    this.scratch = scratch;
    trackScratch(scratch);
    const removeScratch = () => {
      liveScratch.delete(scratch);
      removeScratchTree(scratch);
    };
    try {
      this.child = fork(opts.modulePath, opts.args ?? [], {
        execArgv: [...v8Flags, ...(opts.execArgv ?? [])],
        env: { HOME: scratch, TMPDIR: scratch, TMP: scratch, TEMP: scratch },
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      });
    } catch (e) {
      removeScratch();
      throw e;
    }
    if (this.child.pid !== undefined) opts.onSpawn?.(this.child.pid);
    this.child.on('message', (m: FromWorker) => {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      if ('progress' in m) {
        try {
          p.progress?.(m.progress);
        } catch (e) {
          // An event the parent cannot relay (not plain JSON, too large) ends the job, not the enclave.
          this.pending.delete(m.id);
          p.reject(e);
          this.stop();
        }
        return;
      }
      if ('signData' in m) {
        this.answerSignData(m.id, m.signData, p.signData);
        return;
      }
      this.pending.delete(m.id);
      if ('error' in m) p.reject(new FirnError(m.error.code as ErrorCode, m.error.message));
      else p.resolve(m.result);
    });
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      this.exited = new FirnError(
        'E_RUNTIME_CRASHED',
        `the ML runtime process ended during the job (${signal ?? `exit code ${code}`}); the enclave is unaffected, retry the job`,
        { details: { exitCode: code, signal } },
      );
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
      try {
        removeScratch();
      } catch {}
    };
    this.child.on('exit', onGone);
    this.child.on('error', () => onGone(null, null));
  }

  /** Sign for the child in this (keyed) process and send the record, or the error, back. */
  private answerSignData(
    id: number,
    req: { call: number; digest: Uint8Array; topic: string },
    sign: ((digest: Uint8Array, opts: SignDataOptions) => Promise<SignedDataRecord>) | undefined,
  ): void {
    const reply = (r: { record: SignedDataRecord } | { error: { code: string; message: string } }) => {
      if (this.exited === undefined) this.child.send({ id, op: 'signed', call: req.call, ...r } as ToWorker);
    };
    // The child is untrusted input here: the signer checks the digest and topic itself.
    const run = async () => {
      if (sign === undefined)
        throw new FirnError('E_UNSUPPORTED', 'signData is not available for this request');
      const digest = req.digest instanceof Uint8Array ? req.digest : new Uint8Array(0);
      return sign(digest, { topic: typeof req.topic === 'string' ? req.topic : '' });
    };
    run().then(
      (record) => reply({ record }),
      (e: unknown) => reply({ error: toErrorBody(e) }),
    );
  }

  call<T>(
    msg: WithoutId<ToWorker>,
    progress?: (e: Record<string, unknown>) => void,
    signData?: (digest: Uint8Array, opts: SignDataOptions) => Promise<SignedDataRecord>,
  ): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, {
        resolve: resolve as (v: unknown) => void,
        reject,
        ...(progress ? { progress } : {}),
        ...(signData ? { signData } : {}),
      });
      this.child.send({ ...msg, id } as ToWorker, (err) => {
        if (err && this.pending.delete(id))
          reject(this.exited ?? new FirnError('E_RUNTIME_CRASHED', 'the ML runtime process is gone'));
      });
    });
  }

  /** The error the child's end produced, if it ended (exit, signal, spawn failure). */
  get crash(): FirnError | undefined {
    return this.exited;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  /** An idle spare does not keep the parent's event loop alive; a child in use does. */
  setIdle(idle: boolean): void {
    const channel = this.child.channel as { ref?: () => void; unref?: () => void } | null | undefined;
    if (idle) {
      this.child.unref();
      channel?.unref?.();
    } else {
      this.child.ref();
      channel?.ref?.();
    }
  }
}

/**
 * Scratch folders of children not yet seen to exit. A stop that kills the children and exits at
 * once (the enclave when its host goes) never gets their 'exit' events: what is left here is
 * removed as this process exits.
 */
const liveScratch = new Set<string>();
let scratchExitHook = false;
function trackScratch(dir: string): void {
  liveScratch.add(dir);
  if (scratchExitHook) return;
  scratchExitHook = true;
  process.once('exit', () => {
    for (const d of liveScratch)
      try {
        removeScratchTree(d);
      } catch {}
  });
}

/**
 * The spare child (decisions 1280, 1330): `checked` resolves true once it has loaded every engine
 * and the image was checked after that (a job may take it from then on); `warmed` once its warm-up
 * ended too (or was cut short by a job). `taken` is set when a job takes it, so a warm-up not yet
 * sent is never sent.
 */
interface SpareChild {
  child: RuntimeChild;
  checked: Promise<boolean>;
  warmed: Promise<boolean>;
  taken: boolean;
}

/**
 * Runs every job, and every session's model, in its own child process: one per job (ended when
 * the job ends) and one per warm session (ended on release). With `spare`, the job's child is the
 * one started and warmed ahead of it when there is one (see ChildProcessRuntimeOptions.spare).
 */
export function childProcessRuntime(opts: ChildProcessRuntimeOptions): ChildProcessMlRuntime {
  // What a SIGKILLed enclave's children left on this scratch root goes first (decision 1601).
  removeStaleScratch(opts.scratchRoot ?? tmpdir());
  let spare: SpareChild | undefined;
  let closed = false;
  // The spare warms the training engine only after a training job: the warm-up trains ~46k
  // synthetic samples (about 4 CPU-seconds here, decision 1771), which a node serving inference
  // would pay on every job for nothing. A node's next job is most often of the kind of its last one.
  let lastKind: string | undefined;
  /** The child `prepareJob` took ahead of its job's `runWorkload`, with the job's kind. */
  let early: { kind: string; child: Promise<RuntimeChild> } | undefined;
  /** `p`, or false once `ms` pass (the timer does not hold the event loop). */
  const within = (p: Promise<boolean>, ms: number, unref: boolean): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
        if (unref) timer.unref();
      }),
    ]).finally(() => clearTimeout(timer));
  };
  const startSpare = () => {
    if (!opts.spare || closed || spare !== undefined) return;
    // A spare after a training job is started as a training child: warmed for it (1280) and with
    // its heap sized for it (1440).
    const training = lastKind === TRAINING_KIND;
    let child: RuntimeChild;
    try {
      child = new RuntimeChild(opts, training ? TRAINING_CHILD_V8_FLAGS : []);
    } catch {
      // beforeSpawn refused (the image changed): the next job starts its own child and reports why.
      return;
    }
    child.setIdle(true);
    const s = { child, taken: false } as SpareChild;
    // Every runtime file the child will ever load is loaded now; the image is checked after that,
    // so no file read after the check can reach a job (decision 1330). A spare that does not get
    // there in time, or fails the check, is dropped: a job never waits on it longer than this.
    s.checked = within(
      child.call<null>({ op: 'engines' }).then(
        () => {
          opts.beforeSpawn?.();
          return true;
        },
        () => false,
      ),
      SPARE_WARM_TIMEOUT_MS,
      true,
    ).then(
      (ok) => {
        if (!ok) child.stop();
        return ok;
      },
      () => {
        child.stop();
        return false;
      },
    );
    s.warmed = s.checked.then((ok) => {
      if (!ok) return false;
      // A job took the spare before its warm-up began: it runs at once, unwarmed.
      if (s.taken) return true;
      return within(
        child.call<null>({ op: 'warm', training }).then(
          () => true,
          () => false,
        ),
        SPARE_WARM_TIMEOUT_MS,
        true,
      ).then((warm) => {
        if (!warm && !s.taken) child.stop();
        return warm;
      });
    });
    spare = s;
  };
  // The spare goes to exactly one job; a spare that died, was not checked or does not answer is
  // replaced by a fresh child (checked before its fork like any other).
  const takeChild = async (kind: string): Promise<RuntimeChild> => {
    const s = spare;
    spare = undefined;
    if (s !== undefined) {
      s.taken = true;
      s.child.setIdle(false);
      // A spare that died while idle may not have been reaped yet: one round trip proves it answers,
      // and `take` stops a warm-up still running. A spare that is alive but does not answer
      // (frozen, stuck) must not hold the job: bounded.
      const ok =
        (await s.checked) &&
        (await within(
          s.child.call<null>({ op: 'take' }).then(
            () => true,
            () => false,
          ),
          SPARE_PING_TIMEOUT_MS,
          false,
        ));
      // No image check here: the spare loaded every file it will run before its check (decision 1330).
      if (ok && s.child.crash === undefined) return s.child;
      s.child.stop();
    }
    return new RuntimeChild(opts, kind === TRAINING_KIND ? TRAINING_CHILD_V8_FLAGS : []);
  };
  startSpare();
  return {
    async spareReady() {
      // A start already scheduled (jobFinished runs one macrotask after a job's answer) counts.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const s = spare;
      if (s === undefined) return;
      // Someone waits for it: the child keeps the event loop alive until it is warm.
      s.child.setIdle(false);
      await s.warmed;
      if (spare === s) s.child.setIdle(true);
    },
    // The next job's child starts once this job has answered, so its start (the image check,
    // Node, the engines) never shares the enclave's loop or the CPU with a job's last steps.
    // A child taken for a job that ended before its run is stopped (it never saw an input).
    jobFinished() {
      const e = early;
      early = undefined;
      if (e !== undefined)
        void e.child.then(
          (c) => c.stop(),
          () => undefined,
        );
      startSpare();
    },
    prepareJob(kind) {
      if (early !== undefined || closed) return;
      const child = takeChild(kind);
      child.catch(() => undefined);
      early = { kind, child };
    },
    close() {
      closed = true;
      const e = early;
      early = undefined;
      if (e !== undefined)
        void e.child.then(
          (c) => c.stop(),
          () => undefined,
        );
      spare?.child.stop();
      spare = undefined;
    },
    async runWorkload(kind, ctx, run = {}) {
      lastKind = kind;
      // The child `prepareJob` took for this job when the kind matches; else one taken now.
      const e = early;
      early = undefined;
      if (e !== undefined && e.kind !== kind)
        void e.child.then(
          (c) => c.stop(),
          () => undefined,
        );
      const child = e !== undefined && e.kind === kind ? await e.child : await takeChild(kind);
      // At the deadline the child is killed: a workload that hangs cannot hold the job (or the node).
      const d = deadline(run.timeoutMs, () => child.stop());
      try {
        return await Promise.race([
          child.call<WorkloadResult>(
            {
              op: 'run',
              kind,
              params: ctx.params,
              inputs: ctx.inputs,
              now: ctx.now(),
              ...(ctx.randomSeed === undefined ? {} : { randomSeed: ctx.randomSeed }),
            },
            (e) => ctx.progress(e),
            ctx.signData,
          ),
          d.promise,
        ]);
      } catch (e) {
        if (d.error !== undefined) throw d.error;
        // A child speaks for the app's code: only app codes pass; the crash of the child is ours.
        // (Compared by identity: a child that sends the code E_RUNTIME_CRASHED itself gets E_JOB_FAILED.)
        if (e !== undefined && e === child.crash) throw e;
        const b = appErrorBody(e);
        throw new FirnError(b.code, b.message);
      } finally {
        d.clear();
        child.stop();
      }
    },
    async loadModel(bytes) {
      const child = new RuntimeChild(opts);
      try {
        const info = await child.call<{ inputNames: string[]; outputNames: string[] }>({ op: 'load', bytes });
        return {
          inputNames: info.inputNames,
          outputNames: info.outputNames,
          run: (inputs) => child.call<Record<string, PlainTensor>>({ op: 'infer', inputs }),
          release: async () => child.stop(),
          serveSession: async (params) => {
            const address = await child.call<SessionEndpointAddress>({ op: 'serve', params });
            return {
              address,
              idleMs: () => child.call<number>({ op: 'idle' }),
              finish: (auth) =>
                child.call<SessionEndpointTranscript>({ op: 'finish', ...(auth ? { auth } : {}) }),
            };
          },
        };
      } catch (e) {
        child.stop();
        throw e;
      }
    },
  };
}

function plain(outputs: Record<string, PlainTensor>): Record<string, PlainTensor> {
  const out: Record<string, PlainTensor> = Object.create(null);
  for (const [k, t] of Object.entries(outputs)) out[k] = { type: t.type, dims: [...t.dims], data: t.data };
  return out;
}

/**
 * The child's side: answer requests from the parent over IPC until it disconnects. It runs the
 * given workloads (the image's own table) and one loaded model at a time. Errors go back as
 * {code, message}; anything untyped becomes E_JOB_FAILED without its text.
 */
export function serveMlRuntime(workloads: Record<string, Workload>): void {
  const send = (m: FromWorker) => process.send?.(m);
  const fail = (id: number, e: unknown, app = false) =>
    send({
      id,
      error: app
        ? appErrorBody(e)
        : isFirnError(e)
          ? toErrorBody(e)
          : { code: 'E_JOB_FAILED', message: 'the workload failed' },
    });
  let model: Awaited<ReturnType<typeof loadOnnxModel>> | undefined;
  let served: ServedSessionEndpoint | undefined;
  // signData calls waiting for the parent, by run id and call number.
  const signing = new Map<string, { resolve: (r: SignedDataRecord) => void; reject: (e: unknown) => void }>();
  let calls = 0;
  // A spare's warm-up, while it runs; `take` (or a run) stops it at its next epoch boundary.
  let warming: { done: Promise<unknown>; stop: AbortController } | undefined;
  const stopWarming = async () => {
    const w = warming;
    if (w === undefined) return;
    w.stop.abort();
    await w.done.catch(() => undefined);
    if (warming === w) warming = undefined;
  };
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ToWorker) => {
    if (m.op === 'signed') {
      const key = `${m.id}:${m.call}`;
      const w = signing.get(key);
      signing.delete(key);
      if (m.record !== undefined) w?.resolve(m.record);
      else
        w?.reject(
          new FirnError((m.error?.code ?? 'E_INTERNAL') as ErrorCode, m.error?.message ?? 'signData failed'),
        );
      return;
    }
    void (async () => {
      try {
        if (m.op === 'run') {
          const w = Object.hasOwn(workloads, m.kind) ? workloads[m.kind] : undefined;
          if (w === undefined) throw unknownKind(m.kind);
          // One engine user at a time: a warm-up still running ends before the job starts.
          await stopWarming();
          const t0 = Date.now();
          let r: WorkloadResult;
          try {
            r = await w(
              createWorkloadContext({
                params: m.params,
                inputs: m.inputs,
                progress: (e) => send({ id: m.id, progress: e }),
                now: () => m.now + Math.floor((Date.now() - t0) / 1000),
                ...(m.randomSeed instanceof Uint8Array ? { randomSeed: m.randomSeed } : {}),
                signData: (digest, opts) =>
                  new Promise<SignedDataRecord>((resolve, reject) => {
                    const call = ++calls;
                    signing.set(`${m.id}:${call}`, { resolve, reject });
                    send({ id: m.id, signData: { call, digest, topic: opts?.topic } });
                  }),
              }),
            );
          } catch (e) {
            fail(m.id, e, true);
            return;
          }
          send({ id: m.id, result: r });
        } else if (m.op === 'take') {
          await stopWarming();
          send({ id: m.id, result: null });
        } else if (m.op === 'engines') {
          // Every runtime file this process will load, before any job is known (decision 1330).
          await loadMlEngines();
          send({ id: m.id, result: null });
        } else if (m.op === 'warm') {
          // First-run compilation on synthetic data, before any job is known; `take` cuts it short.
          if (m.training) {
            const stop = new AbortController();
            const done = warmTraining('wasm', { signal: stop.signal });
            warming = { done, stop };
            try {
              await done;
            } finally {
              if (warming?.done === done) warming = undefined;
            }
          }
          send({ id: m.id, result: null });
        } else if (m.op === 'load') {
          if (model !== undefined) throw new FirnError('E_CONFLICT', 'this runtime already holds a model');
          model = await loadOnnxModel(m.bytes, { intraOpThreads: 1 });
          send({
            id: m.id,
            result: { inputNames: [...model.inputNames], outputNames: [...model.outputNames] },
          });
        } else if (m.op === 'infer') {
          if (model === undefined) throw new FirnError('E_NOT_FOUND', 'no model loaded');
          send({ id: m.id, result: plain(await model.run(m.inputs)) });
        } else if (m.op === 'serve') {
          if (model === undefined) throw new FirnError('E_NOT_FOUND', 'no model loaded');
          if (served !== undefined)
            throw new FirnError('E_CONFLICT', 'this runtime already serves a session');
          served = await serveSessionEndpoint(model, m.params);
          send({ id: m.id, result: served.address });
        } else if (m.op === 'finish') {
          if (served === undefined) throw new FirnError('E_NOT_FOUND', 'no session served');
          send({ id: m.id, result: await served.finish(m.auth) });
        } else if (m.op === 'idle') {
          send({ id: m.id, result: served?.idleMs() ?? 0 });
        } else if (m.op === 'release') {
          served?.stop();
          await model?.release();
          model = undefined;
          send({ id: m.id, result: null });
        }
      } catch (e) {
        fail(m.id, e);
      }
    })();
  });
}
