import type { Hex } from '@firn/core';

export interface WorkloadInput {
  role: string;
  artifactId: Hex;
  contentType: string;
  bytes: Uint8Array;
}
export interface WorkloadOutput {
  role: string;
  contentType: string;
  bytes: Uint8Array;
}
export interface WorkloadContext {
  params: Record<string, unknown>;
  inputs: WorkloadInput[];
  /** Emit a progress event to the requester (encrypted by the framework). */
  progress(event: Record<string, unknown>): void;
  /** Unix seconds. */
  now(): number;
}
export interface WorkloadResult {
  outputs: WorkloadOutput[];
  workUnits: bigint;
  report?: Record<string, unknown>;
}
export type Workload = (ctx: WorkloadContext) => Promise<WorkloadResult>;
