import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { DEV_POLICY, evaluateEvidence, PRODUCTION_POLICY } from '../policy/policy.ts';
import { describeEvidenceVerifierBehaviour } from '../../test/evidenceVerifierBehaviour.ts';
import { verifierFor } from '../verifiers.ts';
import { AWS_NITRO_ROOT_G1_DER, AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256 } from './awsNitroRoot.ts';
import { nitroVerifier } from './nitroVerifier.ts';
import { MAX_NITRO_DOCUMENT_BYTES, parseNitroDocument } from './parseNitroDocument.ts';
import { makeSyntheticNitroPki } from '../../test/nitro/syntheticNitro.ts';
import {
  NITRO_ROOT_PEM_FILE,
  NITRO_VECTORS,
  type NitroVector,
  nitroVectorBytes,
} from '../../test/nitro/nitroVectors.ts';
import { verifyNitroDocument } from './verifyNitroDocument.ts';

// Another P-384 root, with AWS's subject name, that did not issue the real documents.
const otherRoot = (await makeSyntheticNitroPki()).rootDer;

async function outcome(bytes: Uint8Array, now: number, roots?: Uint8Array[]): Promise<string> {
  try {
    await nitroVerifier.verify(nitroVerifier.parse(bytes), { now, ...(roots ? { roots } : {}) });
    return 'ACCEPTED';
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return e.code;
  }
}

for (const [name, v] of Object.entries(NITRO_VECTORS) as Array<[string, NitroVector]>) {
  const quote = nitroVectorBytes(v);
  describeEvidenceVerifierBehaviour({
    name: `nitro (real document ${name}, ${v.debug ? 'debug' : 'production'} enclave)`,
    verifier: nitroVerifier,
    quote,
    ctx: { now: v.verifyAt },
    // The whole document is either COSE framing, protected header, signed payload or signature.
    signedRegions: [[0, quote.length]],
    flipSamples: 160,
    wrongRootCtx: { now: v.verifyAt, roots: [otherRoot] },
    // One hour after the leaf certificate expires (the check).
    expiredAt: v.leafNotAfter + 3600,
  });
}

describe('nitro: the pinned AWS Nitro Enclaves Root G1', () => {
  it('is the committed PEM, and its DER has the fingerprint AWS publishes', () => {
    const file = new X509Certificate(readFileSync(NITRO_ROOT_PEM_FILE));
    expect(Buffer.from(file.raw).equals(Buffer.from(AWS_NITRO_ROOT_G1_DER))).toBe(true);
    expect(new X509Certificate(AWS_NITRO_ROOT_G1_PEM).fingerprint256.replace(/:/g, '').toLowerCase()).toBe(
      AWS_NITRO_ROOT_G1_SHA256,
    );
    expect(createHash('sha256').update(AWS_NITRO_ROOT_G1_DER).digest('hex')).toBe(AWS_NITRO_ROOT_G1_SHA256);
  });
  it("is the root every real document's cabundle starts with", () => {
    for (const v of Object.values(NITRO_VECTORS)) {
      const d = parseNitroDocument(nitroVectorBytes(v));
      expect(Buffer.from(d.cabundle[0]!).equals(Buffer.from(AWS_NITRO_ROOT_G1_DER))).toBe(true);
    }
  });
});

describe('nitro: facts of the real documents', () => {
  it('the production document: PCRs, module id, instance, no report data, not debug', async () => {
    const v = NITRO_VECTORS.base;
    const f = await verifierFor('nitro').verify(nitroVerifier.parse(nitroVectorBytes(v)), {
      now: v.verifyAt,
    });
    expect(f.teeType).toBe('nitro');
    expect(f.debug).toBe(false);
    expect(f.measurements.pcr0).toBe(
      'ec74bfbe7f7445a6c7610e152935e028276f638042b74797b119648e13f7a3675796b721034c320f140ea001b41aeae2',
    );
    expect(f.measurements.pcr8).toBe('0'.repeat(96));
    expect(Object.keys(f.measurements)).toHaveLength(16);
    expect(f.extra.moduleId).toBe(v.moduleId);
    expect(f.extra.timestampMs).toBe(v.timestampMs);
    expect(Buffer.from(f.platformId).toString('utf8')).toBe('i-0de38b2b6853cc9e8');
    expect(f.extra.publicKey).toMatch(/^04[0-9a-f]{128}$/);
    expect(f.extra.userData).toBeNull();
    expect(f.extra.nonce).toBeNull();
    // No user_data: nothing is bound, and the zero report data equals no firn binding.
    expect(f.extra.reportDataSource).toBe('none');
    expect(f.reportData.every((b) => b === 0)).toBe(true);
  });

  it('the debug documents: PCR0..2 all zero is debug, nonce and user_data reported', async () => {
    const v = NITRO_VECTORS.eternis0917;
    const f = await nitroVerifier.verify(nitroVerifier.parse(nitroVectorBytes(v)), { now: v.verifyAt });
    expect(f.debug).toBe(true);
    expect(f.extra.nonce).toBe('0000000000000000000000000000000000000001');
    expect(String(f.extra.userData)).toHaveLength(136);
    expect(Buffer.from(f.platformId).toString('utf8')).toBe('i-0bbf1bfe232b8c2ce');
    // Same instance, two enclaves, same (debug) image: same measurement, same platform.
    const g = await nitroVerifier.verify(nitroVerifier.parse(nitroVectorBytes(NITRO_VECTORS.eternis0909)), {
      now: NITRO_VECTORS.eternis0909.verifyAt,
    });
    expect(Buffer.from(g.measurement).equals(Buffer.from(f.measurement))).toBe(true);
    expect(Buffer.from(g.platformId).equals(Buffer.from(f.platformId))).toBe(true);
  });

  it('accepts the pinned root given explicitly as PEM', async () => {
    const v = NITRO_VECTORS.base;
    const pem = new Uint8Array(readFileSync(NITRO_ROOT_PEM_FILE));
    expect(await outcome(nitroVectorBytes(v), v.verifyAt, [pem])).toBe('ACCEPTED');
  });
});

describe('nitro: time', () => {
  for (const [name, v] of Object.entries(NITRO_VECTORS) as Array<[string, NitroVector]>) {
    it(`${name}: valid up to the leaf's notAfter, refused one second and one hour after it`, async () => {
      const b = nitroVectorBytes(v);
      expect(await outcome(b, v.leafNotAfter)).toBe('ACCEPTED');
      expect(await outcome(b, v.leafNotAfter + 1)).toBe('E_EVIDENCE_EXPIRED');
      expect(await outcome(b, v.leafNotAfter + 3600)).toBe('E_EVIDENCE_EXPIRED');
    });
    it(`${name}: refused before the leaf's notBefore`, async () => {
      expect(await outcome(nitroVectorBytes(v), Math.floor(v.timestampMs / 1000) - 3600)).toBe(
        'E_EVIDENCE_EXPIRED',
      );
    });
  }
  it('refuses a verification time that is not unix seconds', async () => {
    const v = NITRO_VECTORS.base;
    expect(await outcome(nitroVectorBytes(v), Number.NaN)).toBe('E_INVALID_INPUT');
  });
});

describe('nitro: wrong roots', () => {
  it('refuses every real document under another root, typed E_EVIDENCE_CHAIN', async () => {
    for (const v of Object.values(NITRO_VECTORS))
      expect(await outcome(nitroVectorBytes(v), v.verifyAt, [otherRoot])).toBe('E_EVIDENCE_CHAIN');
  });
  it("refuses a root pinned as an intermediate of the document's own chain", async () => {
    const v = NITRO_VECTORS.base;
    const d = parseNitroDocument(nitroVectorBytes(v));
    expect(await outcome(nitroVectorBytes(v), v.verifyAt, [d.cabundle[1]!])).toBe('E_EVIDENCE_CHAIN');
  });
});

describe('nitro: policy on the facts', () => {
  it('production refuses the real debug document for being debug; only a debug-allowing policy passes it', async () => {
    const v = NITRO_VECTORS.eternis0917;
    const f = await nitroVerifier.verify(nitroVerifier.parse(nitroVectorBytes(v)), { now: v.verifyAt });
    const no = evaluateEvidence(f, PRODUCTION_POLICY, { now: v.verifyAt });
    expect(no.ok).toBe(false);
    if (!no.ok) expect(no.reasons.map((r) => r.message)).toContain('debug enclaves are not accepted');
    expect(evaluateEvidence(f, DEV_POLICY, { now: v.verifyAt }).ok).toBe(false);
    expect(evaluateEvidence(f, { ...PRODUCTION_POLICY, allowDebug: true }, { now: v.verifyAt }).ok).toBe(
      true,
    );
  });
  it('production accepts the real production document while fresh, refuses it once older than the freshness', async () => {
    const v = NITRO_VECTORS.base;
    const at = Math.floor(v.timestampMs / 1000) + 60;
    const f = await nitroVerifier.verify(nitroVerifier.parse(nitroVectorBytes(v)), { now: at });
    expect(evaluateEvidence(f, PRODUCTION_POLICY, { now: at })).toMatchObject({ ok: true });
    const late = at + 600;
    const old = evaluateEvidence(f, PRODUCTION_POLICY, { now: late });
    expect(old).toMatchObject({ ok: false, reasons: [{ code: 'E_EVIDENCE_EXPIRED' }] });
    expect(
      evaluateEvidence(f, { ...PRODUCTION_POLICY, nitro: { maxDocumentAgeSeconds: 3600 } }, { now: late }).ok,
    ).toBe(true);
  });
  it('refuses facts whose report data does not bind the expected keys and nonce', async () => {
    const v = NITRO_VECTORS.base;
    const at = Math.floor(v.timestampMs / 1000) + 60;
    const f = await nitroVerifier.verify(nitroVerifier.parse(nitroVectorBytes(v)), { now: at });
    // The document carries no user_data: nothing firn computes (a SHA-512 output) is bound by it.
    const bound = evaluateEvidence(f, PRODUCTION_POLICY, {
      now: at,
      expectedReportData: new Uint8Array(64).fill(7),
    });
    expect(bound).toMatchObject({ ok: false, reasons: [{ code: 'E_EVIDENCE_BINDING' }] });
  });
});

describe('nitro: parse caps and typed errors', () => {
  it('refuses input over the size cap with E_TOO_LARGE before decoding', () => {
    const big = new Uint8Array(MAX_NITRO_DOCUMENT_BYTES + 1);
    big.set(nitroVectorBytes(NITRO_VECTORS.base));
    expect(() => parseNitroDocument(big)).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
  });
  it('refuses trailing bytes after the document', () => {
    const b = nitroVectorBytes(NITRO_VECTORS.base);
    const t = new Uint8Array(b.length + 1);
    t.set(b);
    expect(() => parseNitroDocument(t)).toThrow(expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }));
  });
  it('never throws an untyped error on truncations at every length', async () => {
    const b = nitroVectorBytes(NITRO_VECTORS.base);
    for (let n = 0; n < b.length; n += 7) {
      const code = await outcome(b.subarray(0, n), NITRO_VECTORS.base.verifyAt);
      expect(code, `length ${n}`).not.toBe('ACCEPTED');
    }
  });
  it('verifyNitroDocument is synchronous and pure in its inputs (same facts twice)', () => {
    const v = NITRO_VECTORS.base;
    const d = parseNitroDocument(nitroVectorBytes(v));
    const a = verifyNitroDocument(d, { now: v.verifyAt });
    const b = verifyNitroDocument(d, { now: v.verifyAt });
    expect(a.measurements).toEqual(b.measurements);
  });
});
