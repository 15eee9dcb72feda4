import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Test-only: the committed SEV-SNP vectors (packages/attestation/vectors/sev-snp, see each SOURCE.md). */
export function sevSnpVector(path: string): Uint8Array {
  return new Uint8Array(
    readFileSync(fileURLToPath(new URL(`../../vectors/sev-snp/${path}`, import.meta.url))),
  );
}
export const sevSnpVectorText = (path: string): string => Buffer.from(sevSnpVector(path)).toString('latin1');

/** One real report: its files (paths under vectors/sev-snp) and times (unix seconds). */
export interface SevSnpVector {
  product: 'Milan' | 'Genoa' | 'Turin';
  report: string;
  /** The VCEK or VLEK that signed the report. */
  vek: string;
  /** The ASK/ARK chain beside it, when the source ships one. */
  chain: string | undefined;
  /** The time its SOURCE.md says to verify at. */
  now: number;
  vekNotBefore: number;
  vekNotAfter: number;
}

const at = (iso: string): number => Date.parse(iso) / 1000;

/**
 * One row per vector folder: product, folder, VEK file, chain file (or none), then the time to
 * verify at and the VEK's notBefore and notAfter (ISO 8601, from each SOURCE.md).
 */
// biome-ignore format: a table reads best one row a line
const ROWS = {
  goSevGuestMilanV2:  ['Milan', 'go-sev-guest-milan-v2', 'vcek.der', undefined,        '2024-01-01T00:00:00Z', '2022-09-24T00:55:28Z', '2029-09-24T00:55:28Z'],
  gcpMilanV5:         ['Milan', 'gcp-milan-v5',          'vcek.pem', 'cert_chain.pem', '2026-01-01T00:00:00Z', '2025-12-05T06:04:27Z', '2032-12-05T06:04:27Z'],
  azureGenoaV3:       ['Genoa', 'azure-genoa-v3',        'vcek.pem', undefined,        '2025-06-01T00:00:00Z', '2025-01-24T02:21:48Z', '2032-01-24T02:21:48Z'],
  trusteeMilanVlekV3: ['Milan', 'trustee-milan-vlek-v3', 'vlek.der', undefined,        '2025-06-01T00:00:00Z', '2024-12-10T22:14:21Z', '2025-12-10T22:14:21Z'],
} as const satisfies Record<
  string,
  readonly [SevSnpVector['product'], string, string, string | undefined, string, string, string]
>;

/** The real reports with the time each SOURCE.md says to verify at and the VEK's validity. */
export const SEV_SNP_VECTORS = Object.fromEntries(
  Object.entries(ROWS).map(([name, [product, dir, vek, chain, now, notBefore, notAfter]]) => [
    name,
    {
      product,
      report: `${dir}/report.bin`,
      vek: `${dir}/${vek}`,
      chain: chain === undefined ? undefined : `${dir}/${chain}`,
      now: at(now),
      vekNotBefore: at(notBefore),
      vekNotAfter: at(notAfter),
    } satisfies SevSnpVector,
  ]),
) as Record<keyof typeof ROWS, SevSnpVector>;
