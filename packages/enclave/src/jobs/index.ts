import type { Handler } from '../enclaveProgram.ts';
import { createRunJobHandler } from './runJob.ts';
import { WORKLOADS } from './workloads/index.ts';

/** Job handlers (inference, training) registered with the enclave program. */
export const jobHandlers: Record<string, Handler> = {
  runJob: createRunJobHandler({ workloads: WORKLOADS }),
};
