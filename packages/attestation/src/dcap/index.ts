export { loadQuoteCollateralV3 } from '../collateral/loadQuoteCollateralV3.ts';
export { createCollateralFetcher } from '../collateral/createCollateralFetcher.ts';
export type { CollateralFetcher, CollateralFetcherOptions } from '../collateral/createCollateralFetcher.ts';
export { sgxVerifier } from '../sgx/sgxVerifier.ts';
export { tdxVerifier } from '../tdx/tdxVerifier.ts';
export { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256 } from './intelRootCa.ts';
export { parsePckExtensions, type PckExtensions } from './pckExtensions.ts';
export { parseQeIdentity, type QeIdentity } from './qeIdentity.ts';
export {
  type DcapQuote,
  type EnclaveReport,
  INTEL_QE_VENDOR_ID,
  parseDcapQuote,
  type TdReport,
} from './quote.ts';
export { type QuoteCollateralV3, toQuoteCollateralV3 } from './quoteCollateral.ts';
export { convergeTcb, matchQeIdentity, matchTcbLevel, matchTdxModule } from './tcbMatch.ts';
export { parseTcbInfo, type TcbInfo } from './tcbInfo.ts';
export {
  clearDcapCaches,
  type VerifyDcapOptions,
  verifyDcapQuote,
  verifyDcapQuoteSync,
} from './verifyDcapQuote.ts';
export * from './quoteIdentity.ts';
export { INTEL_TCB_STATUSES } from './collateralJson.ts';
