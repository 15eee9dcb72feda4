import type { Handler } from '../enclaveProgram.ts';
import { ArtifactCache } from './artifactCache.ts';
import { createSessionHandlers } from './inferenceSession.ts';
import { createRunJobHandler } from './runJob.ts';
import { WORKLOADS } from './workloads/index.ts';

// One plaintext cache for jobs and sessions, so a model opened by either is not decrypted twice.
const cache = new ArtifactCache();

/** Job handlers (inference, training) and warm inference sessions registered with the enclave program. */
export const jobHandlers: Record<string, Handler> = {
  runJob: createRunJobHandler({ workloads: WORKLOADS, cache }),
  ...createSessionHandlers({ cache }),
};
