import { randomBytes } from 'node:crypto';
import { bytesToHex, computePlatformIdHash } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../packages/attestation/test/codeOf.ts';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import { PRODUCTION_POLICY } from '../../packages/attestation/src/policy/policy.ts';
import { createKdsClient } from '../../packages/attestation/src/sev-snp/kdsClient.ts';
import { parseSevSnpReport } from '../../packages/attestation/src/sev-snp/sevSnpReport.ts';
import { createSevSnpVerifier } from '../../packages/attestation/src/sev-snp/sevSnpVerifier.ts';
import {
  makeSyntheticSevSnp,
  type SyntheticSevSnpOptions,
} from '../../packages/attestation/test/sev-snp/syntheticSevSnp.ts';
import {
  GUEST_KEYS,
  syntheticSevSnpGuest,
} from '../../packages/attestation/test/sev-snp/syntheticSevSnpGuest.ts';
import {
  SEV_SNP_VECTORS,
  sevSnpVector,
  sevSnpVectorText,
} from '../../packages/attestation/test/sev-snp/sevSnpVectors.ts';

// A malicious host (or node operator) against SEV-SNP appraisal: it controls the bundle, the
// collateral it attaches, and the KDS mirror a verifier may be pointed at. It does not hold AMD's
// keys or the guest's VCEK private key (that is inside the AMD Secure Processor).

const { enclaveAddress, kemPublicKey } = GUEST_KEYS;

/** A guest that binds keys and the verifier's nonce into REPORT_DATA as firn does for SGX/TDX. */
async function honestGuest(nonce: Uint8Array, o: SyntheticSevSnpOptions = {}) {
  const g = await syntheticSevSnpGuest(nonce, o);
  // The production policy requires the CRL to have been checked (decision 1765): attach it too.
  const crl = Buffer.from(g.s.crlDer).toString('base64');
  return { ...g, bundle: { ...g.bundle, collateral: { vek: g.s.vekPem, chain: g.s.chainPem, crl } } };
}

const codes = (a: { ok: boolean; reasons?: Array<{ code: string }> }) =>
  a.ok ? ['ACCEPTED'] : a.reasons!.map((r) => r.code);

describe('attack: a host relays or edits SEV-SNP evidence', () => {
  it('baseline: an honest guest binding keys + nonce is accepted through appraiseEvidence', async () => {
    const nonce = randomBytes(32);
    const { bundle, opts } = await honestGuest(nonce);
    const a = await appraiseEvidence(bundle, opts);
    expect(codes(a)).toEqual(['ACCEPTED']);
    if (a.ok) expect(a.facts.teeType).toBe('sev-snp');
  });

  it("a genuine real report relayed with the host's own keys: E_EVIDENCE_BINDING", async () => {
    // The GCP report is genuine AMD evidence, but its REPORT_DATA does not bind these keys and nonce.
    const v = SEV_SNP_VECTORS.gcpMilanV5;
    const nonce = randomBytes(32);
    const a = await appraiseEvidence(
      {
        version: 1,
        teeType: 'sev-snp',
        quote: bytesToHex(sevSnpVector(v.report)),
        collateral: { vek: sevSnpVectorText(v.vek), chain: sevSnpVectorText(v.chain!) },
        nonce: bytesToHex(nonce),
        enclaveAddress: bytesToHex(enclaveAddress),
        kemPublicKey: bytesToHex(kemPublicKey),
      },
      { now: v.now, policy: PRODUCTION_POLICY, expectedNonce: nonce },
    );
    expect(codes(a)).toContain('E_EVIDENCE_BINDING');
  });

  it('replaying an old bundle to a verifier with a fresh nonce: E_EVIDENCE_NONCE / E_EVIDENCE_BINDING', async () => {
    const { bundle, opts } = await honestGuest(randomBytes(32));
    const fresh = randomBytes(32);
    expect(codes(await appraiseEvidence(bundle, { ...opts, expectedNonce: fresh }))).toEqual([
      'E_EVIDENCE_NONCE',
    ]);
    // Rewriting the bundle's nonce to the fresh one does not help: the report binds the old one.
    const a = await appraiseEvidence(
      { ...bundle, nonce: bytesToHex(fresh) },
      { ...opts, expectedNonce: fresh },
    );
    expect(codes(a)).toContain('E_EVIDENCE_BINDING');
  });

  it("swapping the key in the bundle for the host's own KEM key: E_EVIDENCE_BINDING", async () => {
    const nonce = randomBytes(32);
    const { bundle, opts } = await honestGuest(nonce);
    const a = await appraiseEvidence(
      { ...bundle, kemPublicKey: bytesToHex(new Uint8Array(32).fill(1)) },
      opts,
    );
    expect(codes(a)).toContain('E_EVIDENCE_BINDING');
  });

  it('attaching a self-made chain (its own "ARK-Milan") for a report it signed itself: E_EVIDENCE_CHAIN', async () => {
    // The host builds a whole AMD-looking PKI and signs a report binding its own keys; the verifier
    // pins the real ARK (here: the honest guest's), not the one in the bundle.
    const nonce = randomBytes(32);
    const { opts } = await honestGuest(nonce);
    const forged = await honestGuest(nonce);
    const a = await appraiseEvidence(forged.bundle, opts);
    expect(codes(a)).toEqual(['E_EVIDENCE_CHAIN']);
    // And with AMD's real pinned ARKs (the default roots) it is refused the same way.
    const b = await appraiseEvidence(forged.bundle, { ...opts, roots: {} });
    expect(codes(b)).toEqual(['E_EVIDENCE_CHAIN']);
  });

  it('stripping the collateral: E_EVIDENCE_COLLATERAL, never an acceptance', async () => {
    const nonce = randomBytes(32);
    const { bundle, opts } = await honestGuest(nonce);
    const { collateral: _drop, ...bare } = bundle;
    expect(codes(await appraiseEvidence(bare, opts))).toEqual(['E_EVIDENCE_COLLATERAL']);
  });

  it('a guest launched with debug, a migration agent, or reporting from VMPL 2: refused by production', async () => {
    for (const o of [{ policy: 0x30000n | (1n << 19n) }, { policy: 0x30000n | (1n << 18n) }, { vmpl: 2 }]) {
      const { bundle, opts } = await honestGuest(randomBytes(32), o);
      expect(codes(await appraiseEvidence(bundle, opts))).toContain('E_POLICY_REJECTED');
    }
  });

  it('one AMD chip is one platform: its id hash differs from any Intel PPID family and is stable', () => {
    const chip = new Uint8Array(64).fill(3);
    expect(bytesToHex(computePlatformIdHash('sev-snp', chip))).toBe(
      bytesToHex(computePlatformIdHash('sev-snp', chip)),
    );
    expect(bytesToHex(computePlatformIdHash('sev-snp', chip))).not.toBe(
      bytesToHex(computePlatformIdHash('tdx', chip)),
    );
  });
});

describe('attack: a lying KDS mirror', () => {
  function kdsServing(vek: Uint8Array | string, chain: string, crl?: Uint8Array) {
    return (async (input: string | URL | Request) => {
      const p = new URL(String(input)).pathname;
      if (p.endsWith('/cert_chain')) return new Response(chain);
      if (p.endsWith('/crl'))
        return crl === undefined ? new Response('none', { status: 404 }) : new Response(Buffer.from(crl));
      return new Response(typeof vek === 'string' ? vek : Buffer.from(vek));
    }) as typeof fetch;
  }
  /** 'ACCEPTED', or the FirnError code (an untyped rejection fails the test). */
  async function outcome(p: Promise<unknown>): Promise<string> {
    const code = await codeOf(p);
    return code === 'ok' ? 'ACCEPTED' : code;
  }

  it("serves another chip's real VCEK for a real report: refused", async () => {
    const v = SEV_SNP_VECTORS.gcpMilanV5;
    const other = SEV_SNP_VECTORS.goSevGuestMilanV2;
    const kds = createKdsClient({
      baseUrl: 'https://mirror.test',
      fetch: kdsServing(sevSnpVector(other.vek), sevSnpVectorText(v.chain!)),
      crl: false,
      retries: 0,
    });
    const code = await outcome(
      createSevSnpVerifier({ kds }).verify(parseSevSnpReport(sevSnpVector(v.report)), { now: v.now }),
    );
    expect(['E_EVIDENCE_TCB', 'E_EVIDENCE_SIGNATURE']).toContain(code);
  });

  it("serves a self-signed chain and VCEK (its own ARK-Milan): E_EVIDENCE_CHAIN under AMD's pinned ARKs", async () => {
    const s = await makeSyntheticSevSnp();
    const kds = createKdsClient({
      baseUrl: 'https://mirror.test',
      fetch: kdsServing(s.vekDer, s.chainPem),
      crl: false,
    });
    expect(
      await outcome(createSevSnpVerifier({ kds }).verify(parseSevSnpReport(s.report), { now: s.now })),
    ).toBe('E_EVIDENCE_CHAIN');
  });

  it('serves a CRL signed by another ARK to hide a revocation: E_EVIDENCE_COLLATERAL; the real CRL revokes', async () => {
    const s = await makeSyntheticSevSnp({ revokeVek: true });
    const other = await makeSyntheticSevSnp();
    const roots = [new Uint8Array(Buffer.from(s.arkPem))];
    const withCrl = (crl: Uint8Array) =>
      createSevSnpVerifier({
        kds: createKdsClient({
          baseUrl: 'https://mirror.test',
          fetch: kdsServing(s.vekDer, s.chainPem, crl),
        }),
      }).verify(parseSevSnpReport(s.report), { now: s.now, roots });
    expect(await outcome(withCrl(other.crlDer))).toBe('E_EVIDENCE_COLLATERAL');
    expect(await outcome(withCrl(s.crlDer))).toBe('E_EVIDENCE_REVOKED');
  });
});
