import { type CollateralSource, quoteCollateralToJson } from '@firn/attestation';
import { type EvidenceBundle, hexToBytes, isFirnError, MAX_EVIDENCE_BUNDLE_BYTES } from '@firn/core';
import type { Logger } from './logger.ts';

/** Attached collateral above this share of the bundle cap is left out (verifiers then fetch it). */
const MAX_ATTACHED_CHARS = Math.floor(MAX_EVIDENCE_BUNDLE_BYTES * 0.75);

/**
 * Attach DCAP collateral (dcap-qvl QuoteCollateralV3 JSON) to an SGX/TDX evidence bundle, so that
 * verifiers and requesters need no Intel round trip. The host is untrusted and so is what it
 * attaches: verifiers check its signatures and dates like everything else and fetch whatever is
 * missing or expired. A collateral service that fails only leaves the bundle as the enclave made it
 * (logged with its error code), since verifiers can still fetch for themselves.
 */
export async function attachCollateral(
  bundle: EvidenceBundle,
  source: CollateralSource,
  now: number,
  logger?: Pick<Logger, 'warn'>,
): Promise<EvidenceBundle> {
  if (bundle.teeType !== 'sgx' && bundle.teeType !== 'tdx') return bundle;
  try {
    const c = await source.collateralFor(hexToBytes(bundle.quote), now, {
      ...(bundle.collateral === undefined ? {} : { attached: bundle.collateral }),
    });
    const json = quoteCollateralToJson(c);
    if (JSON.stringify(json).length > MAX_ATTACHED_CHARS) {
      logger?.warn('collateral too large to attach; verifiers will fetch it', { source: source.description });
      return bundle;
    }
    return { ...bundle, collateral: json };
  } catch (e) {
    logger?.warn('could not attach collateral; verifiers will fetch it', {
      source: source.description,
      code: isFirnError(e) ? e.code : 'E_INTERNAL',
      message: isFirnError(e) ? e.message : undefined,
    });
    return bundle;
  }
}
