import { isFirnError } from '@firn/core';
import { parseAmdCrl } from './amdCertificates.ts';
import type { SevSnpReport } from './sevSnpReport.ts';
import {
  parseSevSnpCollateral,
  type SevSnpCollateral,
  type SevSnpCollateralProvider,
} from './sevSnpCollateral.ts';

/** thisUpdate of a base64 CRL that parses and is current at `now` ([thisUpdate, nextUpdate)), else undefined. */
function currentCrlThisUpdate(crl: string | undefined, now: number): number | undefined {
  if (crl === undefined) return undefined;
  try {
    const c = parseAmdCrl(new Uint8Array(Buffer.from(crl, 'base64')));
    return now >= c.thisUpdate && now < c.nextUpdate ? c.thisUpdate : undefined;
  } catch {
    return undefined;
  }
}

/** thisUpdate of a base64 CRL whatever its window (the verifier's own copy), else undefined. */
function crlThisUpdate(crl: string): number | undefined {
  try {
    return parseAmdCrl(new Uint8Array(Buffer.from(crl, 'base64'))).thisUpdate;
  } catch {
    return undefined;
  }
}

/**
 * Combine the verifier's own SEV-SNP collateral with what a bundle attaches (decision 1220, the
 * rule of 0940 for DCAP): the own VEK and chain are used whenever the verifier has them; an
 * attached piece only fills a gap (no own chain, no own CRL). CRLs: an attached CRL is considered
 * only if it parses and is current at `now`, and replaces the own one only when its thisUpdate is
 * later (a tie keeps the own); a forged "newer" CRL then fails its ARK signature in
 * verifySevSnpReport. So a host cannot drop, or swap for an older one, the CRL that revokes its
 * VCEK. Without own collateral the attachment is returned unchanged (it is verified like any).
 * Nothing here is trusted: every piece is still checked by verifySevSnpReport.
 */
export function combineSevSnpCollateral(
  own: SevSnpCollateral | undefined,
  attached: unknown,
  now: number,
): SevSnpCollateral | unknown {
  if (own === undefined) return attached;
  let a: SevSnpCollateral | undefined;
  try {
    a = attached === undefined ? undefined : parseSevSnpCollateral(attached);
  } catch {
    a = undefined; // an attachment that does not parse is ignored where the verifier has its own
  }
  const out: SevSnpCollateral = { vek: own.vek };
  const chain = own.chain ?? a?.chain;
  if (chain !== undefined) out.chain = chain;
  let crl = own.crl;
  const attachedAt = currentCrlThisUpdate(a?.crl, now);
  if (attachedAt !== undefined) {
    const ownAt = crl === undefined ? undefined : crlThisUpdate(crl);
    if (ownAt === undefined || attachedAt > ownAt) crl = a?.crl;
  }
  if (crl !== undefined) out.crl = crl;
  return out;
}

/** Combine two own collaterals (the operator's fixed one first): VEK and chain of `first`, the newer CRL. */
function combineOwn(first: SevSnpCollateral, second: SevSnpCollateral): SevSnpCollateral {
  const out: SevSnpCollateral = { vek: first.vek };
  const chain = first.chain ?? second.chain;
  if (chain !== undefined) out.chain = chain;
  const a = first.crl === undefined ? undefined : crlThisUpdate(first.crl);
  const b = second.crl === undefined ? undefined : crlThisUpdate(second.crl);
  const crl = b !== undefined && (a === undefined || b > a) ? second.crl : first.crl;
  if (crl !== undefined) out.crl = crl;
  return out;
}

export interface SevSnpCollateralSourceOptions {
  /** The verifier's fixed collateral (offline files, the operator's `collateral`): untrusted JSON. */
  fixed?: unknown;
  /** The verifier's collateral service (createKdsClient: a KDS URL with cache). */
  provider?: SevSnpCollateralProvider;
  /** What the bundle attached. */
  attached?: unknown;
}

/**
 * The collateral to verify an SEV-SNP report with: the verifier's own (fixed collateral and/or its
 * KDS provider) is authoritative, attached pieces only fill gaps (combineSevSnpCollateral). The
 * provider's E_UNSUPPORTED (a VLEK: not on the public KDS) and E_INVALID_INPUT (a v2 report and no
 * product configured) mean "cannot serve this report": then the fixed collateral, else the
 * attachment, is used. Any other provider error (E_UNAVAILABLE: its KDS is down) is thrown, as a
 * verifier's own outage is no verdict. Errors: the provider's; E_EVIDENCE_COLLATERAL when the
 * fixed collateral does not parse (the operator's file is wrong).
 */
export async function sevSnpCollateralFor(
  report: SevSnpReport,
  now: number,
  o: SevSnpCollateralSourceOptions,
): Promise<SevSnpCollateral | unknown> {
  let own: SevSnpCollateral | undefined = o.fixed === undefined ? undefined : parseSevSnpCollateral(o.fixed);
  if (o.provider !== undefined) {
    let served: SevSnpCollateral | undefined;
    try {
      served = await o.provider.collateralFor(report, now);
    } catch (e) {
      const cannotServe = isFirnError(e) && (e.code === 'E_UNSUPPORTED' || e.code === 'E_INVALID_INPUT');
      if (!cannotServe) throw e;
    }
    if (served !== undefined) own = own === undefined ? served : combineOwn(own, served);
  }
  return combineSevSnpCollateral(own, o.attached, now);
}
