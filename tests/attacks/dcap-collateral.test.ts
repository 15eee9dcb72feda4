import { describe, expect, it } from 'vitest';
import { codeOf } from '../../packages/attestation/test/codeOf.ts';
import { makeSyntheticTdx, type SyntheticDcap } from '../../packages/attestation/test/dcap/syntheticDcap.ts';
import { verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';
import { parseDcapQuote } from '../../packages/attestation/src/dcap/quote.ts';
import { toQuoteCollateralV3 } from '../../packages/attestation/src/dcap/quoteCollateral.ts';
import {
  offlineCollateralSource,
  pcsCollateralSource,
} from '../../packages/attestation/src/collateral/collateralSource.ts';

// A lying collateral source (PCCS, offline file, collateral attached by a node) against DCAP
// verification. docs/attestation-dcap.md and decision 0940: collateral from any source is verified
// like everything else, so it cannot upgrade a TCB status.
const run = (s: SyntheticDcap, collateral = s.collateral) =>
  verifyDcapQuote(s.quote, { collateral, now: s.now, roots: [new Uint8Array(Buffer.from(s.rootPem))] });

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

describe('attack: a node attaches an older, still current PCK CRL to hide its revocation', () => {
  it('the verifier holds the newer CRL revoking the PCK; the attached older one must not win', async () => {
    // The verifier's own source (an offline file here; a PCCS behaves the same) has Intel's newest
    // PCK CRL, which lists the PCK. The node attaches a genuine CRL from ten days earlier, before the
    // revocation, whose nextUpdate has not passed. Attached pieces that are current are preferred
    // over the source's, so the revocation is hidden until the old CRL's nextUpdate (Intel: ~30 days).
    const s = await makeSyntheticTdx({ revokePck: true });
    const source = offlineCollateralSource(s.collateral);
    const attached = { ...s.collateral, pck_crl: s.olderPckCrl! };
    const q = parseDcapQuote(s.quote);
    const collateral = await source.collateralFor(q, s.now, { attached });
    expect(await codeOf(run(s, collateral as unknown as Record<string, unknown>))).toBe('E_EVIDENCE_REVOKED');
  });

  it('same with a PCS/PCCS source: the attached older CRL is used and the PCCS is never asked for its CRL', async () => {
    const s = await makeSyntheticTdx({ revokePck: true });
    const asked: string[] = [];
    // A PCCS that serves Intel's newest collateral (with the revoking CRL), keeping what it is told
    // the caller already has, as createCollateralFetcher does.
    const pccs = pcsCollateralSource({
      baseUrl: 'http://127.0.0.1:1/stub',
      async getCollateral(_q, _now, o = {}) {
        const have = o.have ?? {};
        for (const k of ['tcbInfo', 'qeIdentity', 'pckCrl', 'rootCaCrl'] as const)
          if (have[k] === undefined) asked.push(k);
        return { ...toQuoteCollateralV3(s.collateral), ...have };
      },
    });
    const attached = { ...s.collateral, pck_crl: s.olderPckCrl! };
    const collateral = await pccs.collateralFor(parseDcapQuote(s.quote), s.now, { attached });
    expect(await codeOf(run(s, collateral as unknown as Record<string, unknown>))).toBe('E_EVIDENCE_REVOKED');
  });
});
