/**
 * The workload types of the enclave framework are the app SDK's (`@firn/app`): a first-party
 * workload (inference, training) is written exactly like a developer's.
 */
export type {
  AppInput as WorkloadInput,
  AppOutput as WorkloadOutput,
  Workload,
  WorkloadContext,
  WorkloadResult,
  WorkloadRunContext,
} from '@firn/app';

import type { AppInput, WorkloadContext } from '@firn/app';

/**
 * The part of the context the first-party workloads read (params, inputs, progress, time), so
 * their tests and tools can call them with a plain object; every WorkloadContext is one.
 */
export interface BasicWorkloadContext {
  readonly params: Readonly<Record<string, unknown>>;
  readonly inputs: readonly AppInput[];
  progress: WorkloadContext['progress'];
  now: WorkloadContext['now'];
}
