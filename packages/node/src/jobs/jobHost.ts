import type { Hex } from '@firn/core';
import type { EnclaveSupervisor } from '../enclaveSupervisor.ts';
import type { HttpLimits, RequestRateLimiter, UploadSlots } from '../http/limits.ts';
import type { NodeMetrics } from '../metrics.ts';
import type { NodeDb } from '../storage/nodeDb.ts';
import type { StorageQuotas } from '../storage/quota.ts';

/** The enclave's public identity as the host relays it (GET /v1/node). */
export interface EnclaveIdentity {
  teeType: string;
  measurement: Hex;
  platformId: Hex;
  enclaveId: Hex;
  enclaveAddress: Hex;
  kemPublicKey: Hex;
  /** The operator account the enclave was started for and binds into its quotes (decision 1830). */
  operator?: Hex;
}

/**
 * What the job and session services need from the node that hosts them: its enclave, storage,
 * limits and metrics. NodeDaemon implements it; the services depend on this interface, never on
 * the daemon's module, so imports point one way (nodeDaemon -> http -> jobs -> jobHost).
 */
export interface JobHost {
  readonly opts: { readonly dataDir: string };
  /** The node database, when it could be opened. */
  readonly db: NodeDb | undefined;
  readonly quotas: StorageQuotas;
  readonly supervisor: EnclaveSupervisor;
  /** The enclave's identity, once it started. */
  readonly identity: EnclaveIdentity | undefined;
  readonly limits: HttpLimits;
  /** Mutating requests per remote IP. */
  readonly rateLimiter: RequestRateLimiter;
  /** Admitted session messages per remote IP. */
  readonly sessionRateLimiter: RequestRateLimiter;
  /** Upload concurrency, global, per uploader and per address prefix. */
  readonly uploadSlots: UploadSlots;
  /** Where job outcomes and durations are counted (absent: not counted). */
  readonly metrics?: NodeMetrics;
}
