import { type CollateralSource, pcsCollateralSource } from '@firn/attestation';

export interface CollateralArgs {
  /** `--pccs URL`: Intel's PCS (https://api.trustedservices.intel.com) or any PCCS. */
  pccs?: string;
  /** `--collateral-cache DIR`: keep fetched collateral on disk until its nextUpdate. */
  collateralCache?: string;
}

/**
 * The collateral source for `--pccs URL` (or env FIRN_PCCS_URL), with `--collateral-cache DIR` (or
 * env FIRN_COLLATERAL_CACHE); undefined when neither names a service. The same source type backs
 * the verifier daemon, the node, `firn attest verify` and the SDK.
 */
export function collateralSourceFromArgs(o: CollateralArgs): CollateralSource | undefined {
  const url = o.pccs ?? process.env.FIRN_PCCS_URL;
  if (url === undefined || url === '') return undefined;
  const cacheDir = o.collateralCache ?? process.env.FIRN_COLLATERAL_CACHE;
  return pcsCollateralSource({ baseUrl: url, ...(cacheDir ? { cacheDir } : {}) });
}
