import { FirnError, type Hex } from '@firn/core';
import type { Handler } from '../enclaveProgram.ts';
import type { MlRuntime } from '../runtime/mlRuntime.ts';
import { ArtifactCache } from './artifactCache.ts';
import { createSessionHandlers } from './inferenceSession.ts';
import {
  createPreflightJobHandler,
  createRunJobHandler,
  type PreflightedJob,
  PreflightStore,
  type ServedApp,
} from './runJob.ts';
import type { Workload } from './workload.ts';

/**
 * Job handlers and warm inference sessions registered with the enclave program. `runtime` says
 * where workloads run: the enclave's main passes a child-process runtime (the image's worker
 * entry, which alone holds the app's code and never the keys); tests pass `inProcessRuntime`.
 * `opts.served` names what the app serves (main: from the measured manifest, docs/decisions/1090);
 * without it, the names of `workloads` (the table an in-process runtime serves), not first-party.
 * This module never imports an app, so the enclave entry carries none.
 */
export function createJobHandlers(
  runtime: MlRuntime,
  workloads: Record<string, Workload> = {},
  /** `now`: the enclave's clock for proofs and expiry, unix seconds (main passes chain time). */
  opts: { now?: () => number; served?: ServedApp } = {},
): Record<string, Handler> {
  const clock = opts.now === undefined ? {} : { now: opts.now };
  const served: ServedApp = opts.served ?? { workloads: Object.keys(workloads), firstParty: false };
  // One plaintext cache for jobs and sessions, so a model opened by either is not decrypted twice.
  const cache = new ArtifactCache();
  // Requests opened and checked before the host claims (preflightJob), taken over by runJob.
  const preflight = new PreflightStore<PreflightedJob>();
  // Warm inference sessions belong to apps that define the `inference` workload; any other app's
  // image refuses them, so an image never proves work its app does not do.
  const sessions = served.workloads.includes('inference')
    ? createSessionHandlers({ cache, runtime, ...clock })
    : noSessions();
  return {
    preflightJob: createPreflightJobHandler({ served, preflight, ...clock }),
    runJob: createRunJobHandler({ served, cache, runtime, preflight, ...clock }),
    /** The host's claim failed: drop what its pre-flight kept (job entry or session slot). */
    releasePreflight: async (raw, ctx) => {
      if (typeof raw.jobId === 'string') preflight.delete(raw.jobId.toLowerCase() as Hex);
      return sessions.releaseSessionPreflight!(raw, ctx);
    },
    ...sessions,
  };
}

/** Session handlers of an image whose app has no `inference` workload: every method is E_UNSUPPORTED. */
function noSessions(): Record<string, Handler> {
  const refuse: Handler = async () => {
    throw new FirnError('E_UNSUPPORTED', 'this app serves no inference sessions');
  };
  return {
    preflightSession: refuse,
    openSession: refuse,
    sessionRequest: refuse,
    closeSession: refuse,
    sessionIdle: refuse,
    releaseSessionPreflight: async () => ({ ok: true }),
  };
}
