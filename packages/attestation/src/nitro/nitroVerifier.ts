import type { EvidenceVerifier, VerifiedEvidence, VerifyContext } from '../types.ts';
import { type NitroDocument, parseNitroDocument } from './parseNitroDocument.ts';
import { verifyNitroDocument } from './verifyNitroDocument.ts';

/**
 * AWS Nitro Enclaves behind the common verifier interface: the evidence bundle's quote is the
 * NSM attestation document (COSE_Sign1) as the enclave received it. parse checks the CBOR and the
 * CDDL's sizes; verify checks the chain to the pinned AWS root, every certificate's validity at
 * ctx.now and the ES384 signature (see verifyNitroDocument for what that proves and what it does
 * not). Nitro needs no collateral: ctx.collateral is ignored.
 */
export const nitroVerifier: EvidenceVerifier<NitroDocument> = {
  teeType: 'nitro',
  parse(quote: Uint8Array): NitroDocument {
    return parseNitroDocument(quote);
  },
  verify(parsed: NitroDocument, ctx: VerifyContext): Promise<VerifiedEvidence> {
    try {
      return Promise.resolve(
        verifyNitroDocument(parsed, { now: ctx.now, ...(ctx.roots ? { roots: ctx.roots } : {}) }),
      );
    } catch (e) {
      return Promise.reject(e);
    }
  },
};
