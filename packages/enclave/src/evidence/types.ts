import type { GpuEvidenceEntry, TeeTypeName } from '@firn/core';

/**
 * What the enclave needs from the TEE it runs in. One implementation per TEE (simulated,
 * Gramine SGX, TDX configfs-tsm); a GPU collector is separate and optional.
 */
export interface EvidenceProvider {
  readonly teeType: TeeTypeName;
  /** A CPU quote binding exactly these 64 bytes of report data. */
  quote(reportData: Uint8Array): Promise<{ quote: Uint8Array; collateral?: unknown }>;
  /**
   * A 32-byte key that only this enclave (this measurement) on this platform can derive; used to
   * seal the enclave's keys for the host to store.
   */
  sealingKey(): Promise<Uint8Array>;
}

/** Collects GPU evidence (NVIDIA SDK JSON shape) for a 32-byte GPU nonce. */
export interface GpuEvidenceCollector {
  collect(gpuNonce: Uint8Array): Promise<GpuEvidenceEntry[]>;
}
