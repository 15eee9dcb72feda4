import { FirnError } from '@firn/core';
import { type DcapQuote, parseDcapQuote } from '../dcap/quote.ts';
import { verifyDcapQuote } from '../dcap/verifyDcapQuote.ts';
import type { EvidenceVerifier, VerifiedEvidence, VerifyContext } from '../types.ts';

/** Intel SGX (DCAP quote v3) behind the common verifier interface. */
export const sgxVerifier: EvidenceVerifier<DcapQuote> = {
  teeType: 'sgx',
  parse(quote: Uint8Array): DcapQuote {
    const q = parseDcapQuote(quote);
    if (q.body.kind !== 'sgx') throw new FirnError('E_EVIDENCE_MALFORMED', 'not an SGX quote');
    return q;
  },
  /**
   * Proves the quote was produced by a genuine SGX enclave on a platform Intel certifies, with
   * the TCB status Intel's collateral assigns at ctx.now (see verifyDcapQuote). It does not prove
   * the enclave is one you trust, nor that its status or collateral age is acceptable: that is
   * the policy's job.
   */
  verify(parsed: DcapQuote, ctx: VerifyContext): Promise<VerifiedEvidence> {
    if (parsed.body.kind !== 'sgx')
      return Promise.reject(new FirnError('E_EVIDENCE_MALFORMED', 'not an SGX quote'));
    if (ctx.collateral === undefined)
      return Promise.reject(new FirnError('E_EVIDENCE_COLLATERAL', 'SGX verification needs collateral'));
    return verifyDcapQuote(parsed, {
      collateral: ctx.collateral,
      now: ctx.now,
      ...(ctx.roots ? { roots: ctx.roots } : {}),
    });
  },
};
