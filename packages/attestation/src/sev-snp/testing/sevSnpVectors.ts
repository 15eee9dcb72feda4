import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Test-only: the committed SEV-SNP vectors (packages/attestation/vectors/sev-snp, see each SOURCE.md). */
export function sevSnpVector(path: string): Uint8Array {
  return new Uint8Array(
    readFileSync(fileURLToPath(new URL(`../../../vectors/sev-snp/${path}`, import.meta.url))),
  );
}
export const sevSnpVectorText = (path: string): string => Buffer.from(sevSnpVector(path)).toString('latin1');

/** The real reports with the time each SOURCE.md says to verify at and the VCEK's notAfter. */
export const SEV_SNP_VECTORS = {
  goSevGuestMilanV2: {
    report: 'go-sev-guest-milan-v2/report.bin',
    vek: 'go-sev-guest-milan-v2/vcek.der',
    chain: undefined as string | undefined,
    now: Date.parse('2024-01-01T00:00:00Z') / 1000,
    vekNotAfter: Date.parse('2029-09-24T00:55:28Z') / 1000,
    vekNotBefore: Date.parse('2022-09-24T00:55:28Z') / 1000,
  },
  gcpMilanV5: {
    report: 'gcp-milan-v5/report.bin',
    vek: 'gcp-milan-v5/vcek.pem',
    chain: 'gcp-milan-v5/cert_chain.pem' as string | undefined,
    now: Date.parse('2026-01-01T00:00:00Z') / 1000,
    vekNotAfter: Date.parse('2032-12-05T06:04:27Z') / 1000,
    vekNotBefore: Date.parse('2025-12-05T06:04:27Z') / 1000,
  },
} as const;
