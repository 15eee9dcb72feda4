import type { Workload } from '../workload.ts';
import { inference } from './inference.ts';
import { training } from './training.ts';

/** Workloads by job kind; a kind not listed here is refused with E_UNSUPPORTED. */
export const WORKLOADS: Record<string, Workload> = { inference, training };
