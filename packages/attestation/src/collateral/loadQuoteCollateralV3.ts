import { FirnError } from '@firn/core';
import { type QuoteCollateralV3, toQuoteCollateralV3 } from '../dcap/quoteCollateral.ts';

/** A collateral file is a few tens of KiB; PCK CRLs of large platforms can reach a few MiB. */
const MAX_FILE_CHARS = 16 * 1024 * 1024;

/** Load collateral from a JSON file in dcap-qvl's QuoteCollateralV3 shape (snake_case, hex bytes). */
export function loadQuoteCollateralV3(jsonText: string): QuoteCollateralV3 {
  if (typeof jsonText !== 'string')
    throw new FirnError('E_EVIDENCE_COLLATERAL', 'collateral must be JSON text');
  if (jsonText.length > MAX_FILE_CHARS)
    throw new FirnError('E_EVIDENCE_COLLATERAL', 'collateral file is too large');
  let v: unknown;
  try {
    v = JSON.parse(jsonText);
  } catch (e) {
    throw new FirnError('E_EVIDENCE_COLLATERAL', 'collateral is not valid JSON', { cause: e });
  }
  return toQuoteCollateralV3(v);
}
