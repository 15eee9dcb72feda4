import imageApp from '../../apps/imageApp.ts';
import type { Workload } from '../workload.ts';

/**
 * Workloads by job kind: those of the app this image serves (apps/imageApp.ts); a kind not
 * listed here is refused with E_UNSUPPORTED.
 */
export const WORKLOADS: Record<string, Workload> = imageApp.workloads;
