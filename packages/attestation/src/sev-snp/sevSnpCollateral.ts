import { FirnError } from '@firn/core';
import { MAX_AMD_CERT_BYTES, MAX_AMD_CRL_BYTES } from './amdCertificates.ts';
import type { SevSnpReport } from './sevSnpReport.ts';

/** The collateral an SEV-SNP report is verified with (AMD KDS shapes). */
export interface SevSnpCollateral {
  /** The VCEK or VLEK, PEM. */
  vek: string;
  /** ASK (or ASVK) and ARK, PEM, as the KDS cert_chain; default the pinned ones. */
  chain?: string;
  /** The product's CRL: base64 of its DER. */
  crl?: string;
}

/** Parse SevSnpCollateral from untrusted JSON (size-capped). Errors: E_EVIDENCE_COLLATERAL, E_TOO_LARGE. */
export function parseSevSnpCollateral(value: unknown): SevSnpCollateral {
  const bad = (m: string) => new FirnError('E_EVIDENCE_COLLATERAL', `SEV-SNP collateral: ${m}`);
  if (value === undefined || value === null)
    throw bad('missing: give the VCEK (or VLEK) that signed the report, e.g. from the AMD KDS');
  if (typeof value !== 'object' || Array.isArray(value)) throw bad('must be an object');
  const o = value as Record<string, unknown>;
  const str = (k: string, cap: number): string | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw bad(`${k} must be a string`);
    if (v.length > cap)
      throw new FirnError('E_TOO_LARGE', `SEV-SNP collateral ${k} is over ${cap} characters`);
    return v;
  };
  for (const k of Object.keys(o))
    if (k !== 'vek' && k !== 'chain' && k !== 'crl') throw bad(`unknown field ${k}`);
  const vek = str('vek', MAX_AMD_CERT_BYTES * 2);
  if (vek === undefined) throw bad('vek (the VCEK or VLEK, PEM) is missing');
  const out: SevSnpCollateral = { vek };
  const chain = str('chain', MAX_AMD_CERT_BYTES * 8);
  if (chain !== undefined) out.chain = chain;
  const crl = str('crl', Math.ceil((MAX_AMD_CRL_BYTES * 4) / 3) + 4);
  if (crl !== undefined) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(crl)) throw bad('crl must be base64 of the DER');
    out.crl = crl;
  }
  return out;
}

/** A collateral fetcher the verifier may use when the bundle carries none (e.g. the KDS client). */
export interface SevSnpCollateralProvider {
  collateralFor(report: SevSnpReport, now: number): Promise<SevSnpCollateral>;
  /** Drop what is cached for this report (its collateral did not verify: never keep a lie). */
  forget?(report: SevSnpReport): Promise<void>;
}
