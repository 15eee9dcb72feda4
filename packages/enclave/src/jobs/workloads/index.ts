import imageApp from '../../apps/imageApp.ts';
import type { ServedApp } from '../runJob.ts';
import type { Workload } from '../workload.ts';

/**
 * Workloads by job kind: those of the app this image serves (apps/imageApp.ts); a kind not
 * listed here is refused with E_UNSUPPORTED.
 */
export const WORKLOADS: Record<string, Workload> = imageApp.workloads;

/**
 * What the first-party image serves (in-process tests and tools that run firn-ml's workloads
 * without an image): the names of WORKLOADS and the first-party flag. An image's enclave reads
 * the same from its measured manifest instead (docs/decisions/1090).
 */
export const FIRST_PARTY_SERVED: ServedApp = { workloads: Object.keys(WORKLOADS).sort(), firstParty: true };
