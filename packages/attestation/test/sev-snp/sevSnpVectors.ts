import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Test-only: the committed SEV-SNP vectors (packages/attestation/vectors/sev-snp, see each SOURCE.md). */
export function sevSnpVector(path: string): Uint8Array {
  return new Uint8Array(
    readFileSync(fileURLToPath(new URL(`../../vectors/sev-snp/${path}`, import.meta.url))),
  );
}
export const sevSnpVectorText = (path: string): string => Buffer.from(sevSnpVector(path)).toString('latin1');

/** The real reports with the time each SOURCE.md says to verify at and the VCEK's notAfter. */
export const SEV_SNP_VECTORS = {
  goSevGuestMilanV2: {
    product: 'Milan' as 'Milan' | 'Genoa' | 'Turin',
    report: 'go-sev-guest-milan-v2/report.bin',
    vek: 'go-sev-guest-milan-v2/vcek.der',
    chain: undefined as string | undefined,
    now: Date.parse('2024-01-01T00:00:00Z') / 1000,
    vekNotAfter: Date.parse('2029-09-24T00:55:28Z') / 1000,
    vekNotBefore: Date.parse('2022-09-24T00:55:28Z') / 1000,
  },
  gcpMilanV5: {
    product: 'Milan' as 'Milan' | 'Genoa' | 'Turin',
    report: 'gcp-milan-v5/report.bin',
    vek: 'gcp-milan-v5/vcek.pem',
    chain: 'gcp-milan-v5/cert_chain.pem' as string | undefined,
    now: Date.parse('2026-01-01T00:00:00Z') / 1000,
    vekNotAfter: Date.parse('2032-12-05T06:04:27Z') / 1000,
    vekNotBefore: Date.parse('2025-12-05T06:04:27Z') / 1000,
  },
  azureGenoaV3: {
    product: 'Genoa' as 'Milan' | 'Genoa' | 'Turin',
    report: 'azure-genoa-v3/report.bin',
    vek: 'azure-genoa-v3/vcek.pem',
    chain: undefined as string | undefined,
    now: Date.parse('2025-06-01T00:00:00Z') / 1000,
    vekNotAfter: Date.parse('2032-01-24T02:21:48Z') / 1000,
    vekNotBefore: Date.parse('2025-01-24T02:21:48Z') / 1000,
  },
  trusteeMilanVlekV3: {
    product: 'Milan' as 'Milan' | 'Genoa' | 'Turin',
    report: 'trustee-milan-vlek-v3/report.bin',
    vek: 'trustee-milan-vlek-v3/vlek.der',
    chain: undefined as string | undefined,
    now: Date.parse('2025-06-01T00:00:00Z') / 1000,
    vekNotAfter: Date.parse('2025-12-10T22:14:21Z') / 1000,
    vekNotBefore: Date.parse('2024-12-10T22:14:21Z') / 1000,
  },
} as const;
