export * from './enclaveProgram.ts';
export * from './evidence/simulated.ts';
export * from './evidence/types.ts';
export * from './guestLaunch.ts';
export * from './image.ts';
export * from './keys.ts';
export * from './protocol.ts';
export type { RunJobOutput, RunJobParams, RunJobResult } from './jobs/runJob.ts';
export * from './jobs/jobFailure.ts';
export type {
  CloseSessionResult,
  OpenSessionParams,
  OpenSessionResult,
  SessionOpenRequest,
} from './jobs/inferenceSession.ts';
export type { TrainingReport } from './jobs/workloads/training.ts';
export * from './evidence/kmsProtocol.ts';
export * from './evidence/kmsSealingKey.ts';
export * from './trustedTime.ts';
