import {
  bytesEqual,
  computeReportData,
  deriveGpuNonce,
  FirnError,
  type GpuEvidenceEntry,
  gpuEvidenceDigest,
} from '@firn/core';
import { parseSpdmReport } from './parseSpdmReport.ts';

export class EvidenceBindingError extends FirnError {
  override readonly name = 'EvidenceBindingError';
  constructor(message: string, details?: Record<string, string | number | boolean | null>) {
    super('E_EVIDENCE_BINDING', message, details === undefined ? {} : { details });
  }
}

/**
 * Check that a CPU quote's report data binds exactly this GPU evidence list (computeReportData
 * with gpuEvidenceDigest(entries)) and that every GPU signed deriveGpuNonce(nonce), so the GPUs
 * answered this requester's challenge for this enclave. It does not verify the CPU quote or the
 * GPU signatures (verify*), only the binding between them; it throws E_EVIDENCE_BINDING otherwise.
 */
export function verifyCompositeBinding(
  cpuReportData: Uint8Array,
  identity: { enclaveAddress: Uint8Array; kemPublicKey: Uint8Array; nonce: Uint8Array },
  gpuEntries: readonly GpuEvidenceEntry[],
): void {
  if (gpuEntries.length === 0) throw new EvidenceBindingError('no GPU evidence to bind');
  const expected = computeReportData({ ...identity, gpuEvidenceDigest: gpuEvidenceDigest(gpuEntries) });
  if (!bytesEqual(cpuReportData, expected))
    throw new EvidenceBindingError('CPU report data does not bind this GPU evidence and identity');
  const gpuNonce = deriveGpuNonce(identity.nonce);
  gpuEntries.forEach((e, i) => {
    const report = parseSpdmReport(new Uint8Array(Buffer.from(e.evidence, 'base64')));
    if (!bytesEqual(report.requestNonce, gpuNonce))
      throw new EvidenceBindingError(
        `GPU entry ${i} did not sign the nonce derived from the requester nonce`,
        {
          entry: i,
        },
      );
  });
}
