import { bytesToHex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from './appraiseEvidence.ts';
import { offlineCollateralSource } from './collateral/collateralSource.ts';
import { makeSyntheticTdx, type SyntheticDcap } from '../test/dcap/syntheticDcap.ts';
import { PRODUCTION_POLICY } from './policy/policy.ts';

// The verifier's own collateral given to appraiseEvidence (`collateral`: what the KMS key broker
// and a relying party pass) against collateral a node attaches. Decision 0940: the newest piece
// wins, piece by piece; an attachment never replaces the verifier's copy wholesale.
const nonce = new Uint8Array(32).fill(3);
const bundle = (s: SyntheticDcap, collateral: Record<string, unknown>) => ({
  version: 1,
  teeType: 'tdx',
  quote: bytesToHex(s.quote),
  collateral,
  nonce: bytesToHex(nonce),
  enclaveAddress: `0x${'11'.repeat(20)}`,
  kemPublicKey: `0x${'22'.repeat(32)}`,
});
const codes = async (s: SyntheticDcap, attached: Record<string, unknown>, own: Record<string, unknown>) => {
  const a = await appraiseEvidence(bundle(s, attached), {
    now: s.now,
    policy: PRODUCTION_POLICY,
    expectedNonce: nonce,
    roots: { tdx: [new Uint8Array(Buffer.from(s.rootPem))] },
    collateral: own,
  });
  return a.ok ? [] : a.reasons.map((r) => r.code);
};

describe("appraiseEvidence: the verifier's own collateral against an attachment", () => {
  it('attack: the node attaches an older, still current PCK CRL from before its revocation: refused as revoked', async () => {
    const s = await makeSyntheticTdx({ revokePck: true });
    const older = { ...s.collateral, pck_crl: s.olderPckCrl! };
    expect(await codes(s, older, s.collateral)).toEqual(['E_EVIDENCE_REVOKED']);
  });

  it("the newest piece wins either way: a newer attached CRL replaces the verifier's older one", async () => {
    const s = await makeSyntheticTdx({ revokePck: true });
    const older = { ...s.collateral, pck_crl: s.olderPckCrl! };
    expect(await codes(s, s.collateral, older)).toEqual(['E_EVIDENCE_REVOKED']);
    // Control: with the older CRL on both sides the quote verifies (only the binding fails).
    expect(await codes(s, older, older)).toEqual(['E_EVIDENCE_BINDING']);
  });

  it('an offline source keeps its own piece on a tie and takes an attached piece only where newer', async () => {
    const s = await makeSyntheticTdx({ revokePck: true });
    const { parseDcapQuote } = await import('./dcap/quote.ts');
    const q = parseDcapQuote(s.quote);
    const newest = await offlineCollateralSource(s.collateral).collateralFor(q, s.now, {
      attached: { ...s.collateral, pck_crl: s.olderPckCrl! },
    });
    expect(Buffer.from(newest.pckCrl).toString('hex')).toBe(s.collateral.pck_crl);
    const upgraded = await offlineCollateralSource({
      ...s.collateral,
      pck_crl: s.olderPckCrl!,
    }).collateralFor(q, s.now, { attached: s.collateral });
    expect(Buffer.from(upgraded.pckCrl).toString('hex')).toBe(s.collateral.pck_crl);
  });
});
