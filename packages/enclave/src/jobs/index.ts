import type { Handler } from '../enclaveProgram.ts';
import { inProcessRuntime, type MlRuntime } from '../runtime/mlRuntime.ts';
import { ArtifactCache } from './artifactCache.ts';
import { createSessionHandlers } from './inferenceSession.ts';
import { createRunJobHandler } from './runJob.ts';
import { WORKLOADS } from './workloads/index.ts';

/**
 * Job handlers (inference, training) and warm inference sessions registered with the enclave
 * program. `runtime` says where the ML runtimes run: the enclave's main passes a child-process
 * runtime that never holds the enclave's keys; the default runs them in this process.
 */
export function createJobHandlers(runtime: MlRuntime = inProcessRuntime(WORKLOADS)): Record<string, Handler> {
  // One plaintext cache for jobs and sessions, so a model opened by either is not decrypted twice.
  const cache = new ArtifactCache();
  return {
    runJob: createRunJobHandler({ workloads: WORKLOADS, cache, runtime }),
    ...createSessionHandlers({ cache, runtime }),
  };
}
