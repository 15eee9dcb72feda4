import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticTdx, type SyntheticDcap } from '../../packages/attestation/src/dcap/testing/syntheticDcap.ts';
import { verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

// A lying collateral source (PCCS, offline file, collateral attached by a node) against DCAP
// verification. docs/attestation-dcap.md and decision 0940: collateral from any source is verified
// like everything else, so it cannot upgrade a TCB status.
const run = (s: SyntheticDcap, collateral = s.collateral) =>
  verifyDcapQuote(s.quote, { collateral, now: s.now, roots: [new Uint8Array(Buffer.from(s.rootPem))] });
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return e.code;
  }
}

describe('attack: collateral signed by a key that is not Intel TCB signing key', () => {
  it('TCB info and QE identity signed with a (leaked, even revoked) PCK key are refused', async () => {
    // The attacker holds one platform's PCK private key (extracted from a vulnerable platform).
    // The PCK certificate chains to the root, so the source signs its own TCB info marking the
    // platform UpToDate. Intel's QVL only accepts TCB info signed by the TCB Signing certificate
    // issued directly by the root; a PCK leaf must never act as a collateral signer.
    const s = await makeSyntheticTdx({ collateralSignedByPck: true });
    expect(await codeOf(run(s))).toMatch(/^E_EVIDENCE_(CHAIN|COLLATERAL)$/);
  });
});
