import { isFirnError } from '@firn/core';

/**
 * Test-only: 'ok' when `p` resolves, the FirnError code when it rejects with one (e.g.
 * 'E_EVIDENCE_CHAIN'); any other rejection is rethrown, so an untyped error fails the test.
 */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return e.code;
  }
}
