import {
  type CollateralSource,
  createOcspClient,
  createRimServiceClient,
  type OcspClient,
  pcsCollateralSource,
  type RimServiceClient,
} from '@firn/attestation';

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

export interface GpuSourceArgs {
  /** `--rim-service URL`: NVIDIA's RIM service or a mirror. */
  rimService?: string;
  /** `--rim-dir DIR`: RIMs named `<id>.xml` read before any request. */
  rimDir?: string;
  /** `--ocsp URL`: OCSP responder for GPU and RIM certificates. */
  ocsp?: string;
}

/** RIM source and OCSP client for GPU evidence from `--rim-service`, `--rim-dir`, `--ocsp`. */
export function gpuSourcesFromArgs(o: GpuSourceArgs): {
  gpuRimSource?: RimServiceClient;
  gpuOcsp?: OcspClient;
} {
  const out: { gpuRimSource?: RimServiceClient; gpuOcsp?: OcspClient } = {};
  if (o.rimService !== undefined || o.rimDir !== undefined)
    out.gpuRimSource = createRimServiceClient({
      ...(o.rimService === undefined ? {} : { baseUrl: o.rimService }),
      ...(o.rimDir === undefined ? {} : { offlineDir: o.rimDir }),
    });
  if (o.ocsp !== undefined) out.gpuOcsp = createOcspClient({ url: o.ocsp });
  return out;
}
