import { type GpuEvidenceEntry, isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { pemToDerList } from '../src/nvidia/certChain.ts';
import { evaluateGpu, type GpuPolicy } from '../src/nvidia/evaluateGpu.ts';
import { type GpuVerifyContext, verifyGpuEvidenceList } from '../src/nvidia/verifyGpuEvidence.ts';
import type { EvidenceVerifier, VerifyContext } from '../src/types.ts';

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

/** One GPU or NVSwitch evidence entry with what it must verify under (see describeGpuEvidenceVerifierBehaviour). */
export interface GpuVerifierBehaviourCase {
  name: string;
  entry: GpuEvidenceEntry;
  ctx: GpuVerifyContext;
  /** A policy that accepts the genuine entry under ctx. */
  policy: GpuPolicy;
  /** A time outside the validity of the device chain. */
  expiredAt?: number;
  /** How many offsets to flip in the report and in each certificate (sampled evenly). */
  flipSamples?: number;
}

/** Verify and apply the policy; 'ACCEPTED', or the typed code of the refusal. Untyped errors fail the test. */
async function gpuOutcome(
  entry: GpuEvidenceEntry,
  ctx: GpuVerifyContext,
  policy: GpuPolicy,
): Promise<string> {
  try {
    const facts = await verifyGpuEvidenceList([entry], ctx);
    const v = evaluateGpu(facts, policy);
    return v.ok ? 'ACCEPTED' : v.reasons[0]!.code;
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error)?.message}`);
    if (e.code === 'E_INTERNAL') throw new Error(`E_INTERNAL: ${e.message}`);
    return e.code;
  }
}

const pemOf = (ders: readonly Uint8Array[]) =>
  ders
    .map(
      (d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`,
    )
    .join('');

function replaceOnce(der: Uint8Array, find: number[], replace: number[]): Uint8Array | undefined {
  const at = Buffer.from(der).indexOf(Buffer.from(find));
  if (at < 0) return undefined;
  const out = Buffer.concat([
    Buffer.from(der.subarray(0, at)),
    Buffer.from(replace),
    Buffer.from(der.subarray(at + find.length)),
  ]);
  return new Uint8Array(out);
}

/**
 * Structured certificate mutations that keep the DER framing (so the decoders get past it) but
 * break the key or the algorithm: the attacks that once escaped as untyped OpenSSL errors.
 */
export function certificateMutations(der: Uint8Array): Array<[string, Uint8Array]> {
  const out: Array<[string, Uint8Array]> = [];
  const add = (what: string, d: Uint8Array | undefined) => {
    if (d !== undefined) out.push([what, d]);
  };
  const P384 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
  const EC_KEY = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
  add('curve P-384 relabelled P-521', replaceOnce(der, P384, [...P384.slice(0, -1), 0x23]));
  add('curve OID unknown', replaceOnce(der, P384, [...P384.slice(0, -1), 0x7f]));
  add('key algorithm unknown', replaceOnce(der, EC_KEY, [...EC_KEY.slice(0, -1), 0x09]));
  // The uncompressed point: BIT STRING (0x03 0x62 0x00 0x04 || X || Y) for P-384.
  const point = Buffer.from(der).indexOf(Buffer.from([0x03, 0x62, 0x00, 0x04]));
  if (point >= 0) {
    for (const [what, at, v] of [
      ['point prefix 0x05', point + 3, 0x05],
      ['point prefix 0x00', point + 3, 0x00],
      ['point X flipped', point + 10, -1],
      ['point Y flipped', point + 90, -1],
      ['bit string unused bits 7', point + 2, 0x07],
    ] as const) {
      const d = new Uint8Array(der);
      d[at] = v === -1 ? d[at]! ^ 0x5a : v;
      out.push([what, d]);
    }
    out.push(['point truncated (length kept)', new Uint8Array([...der.subarray(0, point + 40)])]);
  }
  add(
    'outer length corrupted',
    (() => {
      const d = new Uint8Array(der);
      d[2] = d[2]! ^ 0x10;
      return d;
    })(),
  );
  return out;
}

/**
 * The behaviour every GPU / NVSwitch evidence check shares with the CPU verifiers: genuine
 * evidence is accepted; flipped report bytes, truncation, random and oversized input, a wrong
 * root, a wrong nonce, a time outside validity, and structured and random certificate fuzzing are
 * each refused with a typed error or a policy refusal, never an acceptance, never an untyped error.
 */
export function describeGpuEvidenceVerifierBehaviour(c: GpuVerifierBehaviourCase): void {
  describe(`GPU evidence verifier behaviour: ${c.name}`, () => {
    const report = Buffer.from(c.entry.evidence, 'base64');
    const chain = pemToDerList(Buffer.from(c.entry.certificate, 'base64').toString('latin1'));
    const withReport = (b: Uint8Array) => ({ ...c.entry, evidence: Buffer.from(b).toString('base64') });
    const withChain = (ders: readonly Uint8Array[]) => ({
      ...c.entry,
      certificate: Buffer.from(pemOf(ders)).toString('base64'),
    });
    const samples = c.flipSamples ?? 24;

    it('accepts the genuine evidence', async () => {
      expect(await gpuOutcome(c.entry, c.ctx, c.policy)).toBe('ACCEPTED');
    });
    it('refuses a flipped byte anywhere in the report', async () => {
      for (let k = 0; k < samples; k++) {
        const at = Math.floor((k * report.length) / samples);
        const b = new Uint8Array(report);
        b[at]! ^= 0x01;
        expect(await gpuOutcome(withReport(b), c.ctx, c.policy), `offset ${at}`).not.toBe('ACCEPTED');
      }
    });
    it('refuses truncated, random and oversized reports with a typed error', async () => {
      for (const cut of [0, 1, 37, Math.floor(report.length / 2), report.length - 1])
        expect(await gpuOutcome(withReport(report.subarray(0, cut)), c.ctx, c.policy)).not.toBe('ACCEPTED');
      let seed = 11;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed & 0xff;
      };
      for (const len of [16, 64, report.length])
        expect(await gpuOutcome(withReport(Uint8Array.from({ length: len }, rnd)), c.ctx, c.policy)).not.toBe(
          'ACCEPTED',
        );
      expect(await gpuOutcome(withReport(new Uint8Array(1 << 20)), c.ctx, c.policy)).not.toBe('ACCEPTED');
    });
    it('refuses structured certificate fuzzing (malformed keys, algorithms, lengths) with a typed error', async () => {
      let tried = 0;
      for (const [i, der] of chain.entries()) {
        for (const [what, bad] of certificateMutations(der)) {
          const ders = chain.map((d, j) => (j === i ? bad : d));
          expect(await gpuOutcome(withChain(ders), c.ctx, c.policy), `certificate ${i}: ${what}`).not.toBe(
            'ACCEPTED',
          );
          tried++;
        }
      }
      expect(tried).toBeGreaterThan(chain.length * 4);
    });
    it('refuses random byte flips in every certificate with a typed error', async () => {
      for (const [i, der] of chain.entries())
        for (let k = 0; k < samples; k++) {
          const at = Math.floor((k * der.length) / samples);
          const bad = new Uint8Array(der);
          bad[at]! ^= 0x04;
          const ders = chain.map((d, j) => (j === i ? bad : d));
          expect(
            await gpuOutcome(withChain(ders), c.ctx, c.policy),
            `certificate ${i} offset ${at}`,
          ).not.toBe('ACCEPTED');
        }
    });
    it('refuses a certificate list that is empty, reordered or not PEM', async () => {
      expect(await gpuOutcome(withChain([...chain].reverse()), c.ctx, c.policy)).not.toBe('ACCEPTED');
      expect(await gpuOutcome(withChain(chain.slice(1)), c.ctx, c.policy)).not.toBe('ACCEPTED');
      for (const certificate of ['', Buffer.from('not a certificate').toString('base64'), '!!!'])
        expect(await gpuOutcome({ ...c.entry, certificate }, c.ctx, c.policy)).not.toBe('ACCEPTED');
    });
    it('refuses evidence under roots that do not include its own', async () => {
      const other = { ...c.ctx, roots: { device: [chain[chain.length - 2]!] } };
      expect(await gpuOutcome(c.entry, other, c.policy)).not.toBe('ACCEPTED');
    });
    it('refuses evidence for another nonce', async () => {
      const ctx = { ...c.ctx, expectedNonce: new Uint8Array(32).fill(0xee) };
      expect(await gpuOutcome(c.entry, ctx, c.policy)).toBe('E_EVIDENCE_NONCE');
    });
    if (c.expiredAt !== undefined) {
      const at = c.expiredAt;
      it('refuses evidence at a time outside the chain validity', async () => {
        expect(await gpuOutcome(c.entry, { ...c.ctx, now: at }, c.policy)).not.toBe('ACCEPTED');
      });
    }
  });
}
