import type { Handler } from '../enclaveProgram.ts';

/** Job handlers (inference, training) registered with the enclave program. */
export const jobHandlers: Record<string, Handler> = {};
