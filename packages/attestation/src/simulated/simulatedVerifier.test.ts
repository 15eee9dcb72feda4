import { randomBytes } from 'node:crypto';
import { computeReportData, isFirnError } from '@firn/core';
import { createSimulatedProvider } from '@firn/enclave';
import { beforeAll, describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../appraiseEvidence.ts';
import { DEV_POLICY, PRODUCTION_POLICY } from '../policy/policy.ts';
import { describeEvidenceVerifierBehaviour } from '../../test/evidenceVerifierBehaviour.ts';
import { certificateDer } from './simulatedPlatform.ts';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { parseSimulatedQuote } from './simulatedQuote.ts';
import { simulatedVerifier } from './simulatedVerifier.ts';

// Fixed times: the test passes the verification time in and never reads the clock inside verify.
const NOW = 1_790_000_000;
const root = await createSimulatedRoot({ now: NOW });
const otherRoot = await createSimulatedRoot({ now: NOW });
const platform = await createSimulatedPlatform(root, { now: NOW, years: 1 });
const bundleSha = randomBytes(32);
const provider = createSimulatedProvider(platform, bundleSha);
const enclaveAddress = randomBytes(20);
const kemPublicKey = randomBytes(32);
const nonce = randomBytes(32);
const reportData = computeReportData({ enclaveAddress, kemPublicKey, nonce });
const { quote } = await provider.quote(reportData);
const parsed = parseSimulatedQuote(quote);
const ctx = { now: NOW, roots: [certificateDer(root.certificatePem)] };

describeEvidenceVerifierBehaviour({
  name: 'simulated',
  verifier: simulatedVerifier,
  quote,
  ctx,
  signedRegions: [[0, parsed.signedBytes.length]],
  flipSamples: 200,
  wrongRootCtx: { now: NOW, roots: [certificateDer(otherRoot.certificatePem)] },
  expiredAt: NOW + 2 * 365 * 24 * 3600,
  expectedReportData: reportData,
});

describe('simulated evidence under policies', () => {
  let bundle: Record<string, unknown>;
  beforeAll(() => {
    bundle = {
      version: 1,
      teeType: 'simulated',
      quote: `0x${Buffer.from(quote).toString('hex')}`,
      nonce: `0x${nonce.toString('hex')}`,
      enclaveAddress: `0x${enclaveAddress.toString('hex')}`,
      kemPublicKey: `0x${kemPublicKey.toString('hex')}`,
    };
  });

  it('the dev policy accepts genuine simulated evidence bound to the nonce and keys', async () => {
    const a = await appraiseEvidence(bundle, {
      now: NOW,
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots: { simulated: ctx.roots },
    });
    expect(a.ok).toBe(true);
  });

  it('the production policy rejects simulated evidence by construction', async () => {
    const a = await appraiseEvidence(bundle, {
      now: NOW,
      policy: PRODUCTION_POLICY,
      expectedNonce: nonce,
      roots: { simulated: ctx.roots },
    });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons.map((r) => r.code)).toContain('E_POLICY_REJECTED');
  });

  it('refuses evidence for another nonce', async () => {
    const a = await appraiseEvidence(bundle, {
      now: NOW,
      policy: DEV_POLICY,
      expectedNonce: randomBytes(32),
      roots: { simulated: ctx.roots },
    });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons[0]!.code).toBe('E_EVIDENCE_NONCE');
  });

  it('refuses report data that does not bind the claimed keys', async () => {
    const swapped = { ...bundle, kemPublicKey: `0x${randomBytes(32).toString('hex')}` };
    const a = await appraiseEvidence(swapped, {
      now: NOW,
      policy: DEV_POLICY,
      expectedNonce: nonce,
      roots: { simulated: ctx.roots },
    });
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons.map((r) => r.code)).toContain('E_EVIDENCE_BINDING');
  });

  it('refuses a quote with a flipped byte with a typed code', async () => {
    const bad = Buffer.from(quote);
    bad[100]! ^= 0x80;
    const a = await appraiseEvidence(
      { ...bundle, quote: `0x${bad.toString('hex')}` },
      { now: NOW, policy: DEV_POLICY, expectedNonce: nonce, roots: { simulated: ctx.roots } },
    );
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reasons[0]!.code).toMatch(/^E_EVIDENCE_/);
  });

  it('refuses malformed and oversized bundles', async () => {
    for (const input of [
      'not json',
      '{"version":2}',
      'x'.repeat(2 * 1024 * 1024),
      { ...bundle, quote: 'zz' },
    ]) {
      const a = await appraiseEvidence(input, {
        now: NOW,
        policy: DEV_POLICY,
        expectedNonce: nonce,
        roots: { simulated: ctx.roots },
      });
      expect(a.ok).toBe(false);
      if (!a.ok) expect(a.reasons[0]!.code).toMatch(/^E_(EVIDENCE_MALFORMED|TOO_LARGE)$/);
    }
  });

  it('refuses a debug simulated enclave under the dev policy', async () => {
    const dbg = createSimulatedProvider(platform, bundleSha, { debug: true });
    const q = (await dbg.quote(reportData)).quote;
    const a = await appraiseEvidence(
      { ...bundle, quote: `0x${Buffer.from(q).toString('hex')}` },
      { now: NOW, policy: DEV_POLICY, expectedNonce: nonce, roots: { simulated: ctx.roots } },
    );
    expect(a.ok).toBe(false);
  });

  it('reports an unknown TEE type as a typed error', async () => {
    try {
      simulatedVerifier.parse(new Uint8Array(10));
      expect.unreachable();
    } catch (e) {
      expect(isFirnError(e)).toBe(true);
    }
  });
});
