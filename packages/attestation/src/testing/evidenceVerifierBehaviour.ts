import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import type { EvidenceVerifier, VerifyContext } from '../types.ts';

export interface VerifierBehaviourCase {
  /** Name printed in the suite title. */
  name: string;
  verifier: EvidenceVerifier;
  /** A genuine quote that verifies under ctx. */
  quote: Uint8Array;
  ctx: VerifyContext;
  /** Byte ranges [start, end) covered by a signature: flipping any byte there must fail. */
  signedRegions: Array<[number, number]>;
  /** How many offsets of each signed region to flip (all when undefined); sampled evenly. */
  flipSamples?: number;
  /** A context whose roots do not include the quote's root (wrong root must fail). */
  wrongRootCtx?: VerifyContext;
  /** A time outside the validity of the evidence or its collateral. */
  expiredAt?: number;
  /** Expected report data, when the case knows it. */
  expectedReportData?: Uint8Array;
}

async function rejects(v: EvidenceVerifier, bytes: Uint8Array, ctx: VerifyContext): Promise<string> {
  try {
    const parsed = v.parse(bytes);
    await v.verify(parsed, ctx);
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error)?.message}`);
    return e.code;
  }
  return 'ACCEPTED';
}

/**
 * The behaviour every EvidenceVerifier shares (simulated, SGX, TDX, ...): genuine evidence
 * verifies to well-formed facts; a flipped signed byte, truncation, random bytes, oversize input,
 * a wrong root and a time outside validity each fail with a typed error, never an acceptance.
 */
export function describeEvidenceVerifierBehaviour(c: VerifierBehaviourCase): void {
  describe(`EvidenceVerifier behaviour: ${c.name}`, () => {
    it('verifies genuine evidence to well-formed facts', async () => {
      const facts = await c.verifier.verify(c.verifier.parse(c.quote), c.ctx);
      expect(facts.teeType).toBe(c.verifier.teeType);
      expect(facts.measurement).toHaveLength(32);
      expect(facts.reportData).toHaveLength(64);
      expect(facts.platformId.length).toBeGreaterThan(0);
      expect(typeof facts.debug).toBe('boolean');
      if (c.expectedReportData)
        expect(Buffer.from(facts.reportData)).toEqual(Buffer.from(c.expectedReportData));
    });

    it('is deterministic: parsing twice gives equal facts', async () => {
      const a = await c.verifier.verify(c.verifier.parse(c.quote), c.ctx);
      const b = await c.verifier.verify(c.verifier.parse(new Uint8Array(c.quote)), c.ctx);
      expect(Buffer.from(a.measurement)).toEqual(Buffer.from(b.measurement));
      expect(a.tcbStatus).toBe(b.tcbStatus);
    });

    it('refuses a flipped byte anywhere in a signed region', async () => {
      let tried = 0;
      for (const [start, end] of c.signedRegions) {
        const n = end - start;
        const samples = c.flipSamples === undefined ? n : Math.min(n, c.flipSamples);
        for (let k = 0; k < samples; k++) {
          const off = start + Math.floor((k * n) / samples);
          const bad = new Uint8Array(c.quote);
          bad[off]! ^= 0x01;
          const code = await rejects(c.verifier, bad, c.ctx);
          expect(code, `offset ${off}`).not.toBe('ACCEPTED');
          tried++;
        }
      }
      expect(tried).toBeGreaterThan(0);
    });

    it('refuses truncated evidence with a typed error', async () => {
      for (const cut of [0, 1, Math.floor(c.quote.length / 2), c.quote.length - 1]) {
        expect(await rejects(c.verifier, c.quote.subarray(0, cut), c.ctx)).not.toBe('ACCEPTED');
      }
    });

    it('refuses random and oversized bytes with a typed error', async () => {
      let seed = 7;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed & 0xff;
      };
      for (const len of [16, 64, c.quote.length]) {
        const junk = Uint8Array.from({ length: len }, rnd);
        expect(await rejects(c.verifier, junk, c.ctx)).not.toBe('ACCEPTED');
      }
      const big = new Uint8Array(4 * 1024 * 1024);
      big.set(c.quote);
      expect(await rejects(c.verifier, big, c.ctx)).not.toBe('ACCEPTED');
    });

    if (c.wrongRootCtx) {
      const wrong = c.wrongRootCtx;
      it('refuses evidence under a root that is not pinned', async () => {
        expect(await rejects(c.verifier, c.quote, wrong)).not.toBe('ACCEPTED');
      });
    }

    if (c.expiredAt !== undefined) {
      const at = c.expiredAt;
      it('refuses evidence at a time outside its validity', async () => {
        expect(await rejects(c.verifier, c.quote, { ...c.ctx, now: at })).not.toBe('ACCEPTED');
      });
    }
  });
}
