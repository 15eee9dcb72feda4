import { randomBytes } from 'node:crypto';
import {
  bytesToHex,
  computeEnclaveId,
  computeReportData,
  type EvidenceBundle,
  isFirnError,
  measurementDigest,
  utf8,
} from '@firn/core';
import { encode } from 'cborg';
import { describe, expect, it } from 'vitest';
import { appraiseEvidence } from '../../packages/attestation/src/appraiseEvidence.ts';
import { appraiseRegistration } from '../../packages/attestation/src/appraiseRegistration.ts';
import { nitroVerifier } from '../../packages/attestation/src/nitro/nitroVerifier.ts';
import { parseNitroDocument } from '../../packages/attestation/src/nitro/parseNitroDocument.ts';
import {
  makeSyntheticNitroDocument,
  makeSyntheticNitroPki,
  syntheticPcrs,
} from '../../packages/attestation/test/nitro/syntheticNitro.ts';
import { NITRO_VECTORS, nitroVectorBytes } from '../../packages/attestation/test/nitro/nitroVectors.ts';
import { PRODUCTION_POLICY } from '../../packages/attestation/src/policy/policy.ts';

// Attacks on AWS Nitro evidence. The attacker controls the host: it relays (and may alter, splice,
// replay or forge) the attestation document between the enclave's NSM and the verifier, and can
// mint its own certificates, including a root that copies AWS's subject name. Real documents are
// the vectors in packages/attestation/vectors/nitro; forged ones come from a synthetic PKI.
const pki = await makeSyntheticNitroPki();
const NOW = Date.parse('2025-01-01T00:01:00Z') / 1000;
const T_DOC = Date.parse('2025-01-01T00:00:30Z');

async function outcome(bytes: Uint8Array, now: number, roots?: readonly Uint8Array[]): Promise<string> {
  try {
    await nitroVerifier.verify(nitroVerifier.parse(bytes), { now, ...(roots ? { roots } : {}) });
    return 'ACCEPTED';
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error).message}`);
    return e.code;
  }
}

/** A node's bundle around a document, for the identity the verifier expects. */
function bundle(
  doc: Uint8Array,
  id: { address: Uint8Array; kem: Uint8Array; nonce: Uint8Array; operator?: Uint8Array },
): EvidenceBundle {
  return {
    version: 1,
    teeType: 'nitro',
    quote: bytesToHex(doc),
    nonce: bytesToHex(id.nonce),
    enclaveAddress: bytesToHex(id.address),
    kemPublicKey: bytesToHex(id.kem),
    ...(id.operator === undefined ? {} : { operator: bytesToHex(id.operator) }),
  };
}

const identity = () => ({ address: randomBytes(20), kem: randomBytes(32), nonce: randomBytes(32) });
const reportDataFor = (id: ReturnType<typeof identity>) =>
  computeReportData({ enclaveAddress: id.address, kemPublicKey: id.kem, nonce: id.nonce });

describe('attack: a forged Nitro PKI', () => {
  it("a root that copies AWS's subject name signs a perfect document: refused under the pinned AWS root", async () => {
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC });
    expect(await outcome(doc, NOW)).toBe('E_EVIDENCE_CHAIN');
    // Control: the same document is accepted only by someone who pins the forged root.
    expect(await outcome(doc, NOW, [pki.rootDer])).toBe('ACCEPTED');
  });

  it('a real AWS cabundle with a forged leaf: refused (the leaf is not issued by the instance CA)', async () => {
    const real = parseNitroDocument(nitroVectorBytes(NITRO_VECTORS.base));
    const payload = encode(
      new Map<string, unknown>([
        ['module_id', real.moduleId],
        ['digest', 'SHA384'],
        ['timestamp', real.timestampMs],
        ['pcrs', real.pcrs],
        ['certificate', pki.leafDer],
        ['cabundle', real.cabundle],
        ['public_key', null],
        ['user_data', null],
        ['nonce', null],
      ]),
    );
    const doc = await makeSyntheticNitroDocument(pki, { payloadOverride: payload });
    expect(await outcome(doc, NITRO_VECTORS.base.verifyAt)).toBe('E_EVIDENCE_CHAIN');
  });

  it('a signing certificate marked as a CA is refused', async () => {
    const caLeaf = await makeSyntheticNitroPki({ leafIsCa: true });
    const doc = await makeSyntheticNitroDocument(caLeaf, { timestampMs: T_DOC });
    expect(await outcome(doc, NOW, [caLeaf.rootDer])).toBe('E_EVIDENCE_MALFORMED');
  });
});

describe('attack: altering or splicing a genuine document', () => {
  it('the real production document with its PCR0 changed to an allow-listed image: signature refused', async () => {
    const b = nitroVectorBytes(NITRO_VECTORS.base);
    const pcr0 = Buffer.from('ec74bfbe7f7445a6c7610e152935e028', 'hex');
    const at = Buffer.from(b).indexOf(pcr0);
    expect(at).toBeGreaterThan(0);
    const bad = new Uint8Array(b);
    bad.set(new Uint8Array(16).fill(0x11), at);
    expect(await outcome(bad, NITRO_VECTORS.base.verifyAt)).toBe('E_EVIDENCE_SIGNATURE');
  });

  it("one real document's payload under another real document's signature: refused", async () => {
    const a = parseNitroDocument(nitroVectorBytes(NITRO_VECTORS.eternis0917));
    const b = parseNitroDocument(nitroVectorBytes(NITRO_VECTORS.eternis0909));
    const spliced = encode([a.protectedHeader, new Map(), a.payload, b.signature]);
    expect(await outcome(spliced, NITRO_VECTORS.eternis0917.verifyAt)).toBe('E_EVIDENCE_SIGNATURE');
  });

  it('a document that names another algorithm (ES256, or none) is refused before any signature check', async () => {
    for (const alg of [-7, 0, -36]) {
      const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, alg });
      expect(await outcome(doc, NOW, [pki.rootDer]), `alg ${alg}`).toBe('E_EVIDENCE_MALFORMED');
    }
  });

  it('duplicate payload keys (a second user_data a lenient reader would take) are refused even when signed', async () => {
    const base = encode(
      new Map<string, unknown>([
        ['module_id', 'i-0123456789abcdef0-enc0123456789abcdef'],
        ['digest', 'SHA384'],
        ['timestamp', T_DOC],
        ['pcrs', syntheticPcrs()],
        ['certificate', pki.leafDer],
        ['cabundle', [pki.rootDer, pki.intermediateDer]],
        ['user_data', new Uint8Array(64).fill(1)],
      ]),
    );
    // Bump the map's entry count (0xa7 -> 0xa8) and append a second user_data.
    expect(base[0]).toBe(0xa7);
    const dup = new Uint8Array([
      0xa8,
      ...base.subarray(1),
      ...encode('user_data'),
      ...encode(new Uint8Array(64).fill(2)),
    ]);
    const doc = await makeSyntheticNitroDocument(pki, { payloadOverride: dup });
    expect(await outcome(doc, NOW, [pki.rootDer])).toBe('E_EVIDENCE_MALFORMED');
  });

  it('unknown payload fields are refused, signed or not', async () => {
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, extraFields: { debug: false } });
    expect(await outcome(doc, NOW, [pki.rootDer])).toBe('E_EVIDENCE_MALFORMED');
  });
});

describe('attack: time', () => {
  it('a document dated in the future (a pre-made answer) is refused', async () => {
    const far = await makeSyntheticNitroPki({
      notBefore: new Date('2025-01-01T00:00:00Z'),
      notAfter: new Date('2025-01-02T00:00:00Z'),
    });
    const doc = await makeSyntheticNitroDocument(far, { timestampMs: (NOW + 3600) * 1000 });
    expect(await outcome(doc, NOW, [far.rootDer])).toBe('E_EVIDENCE_EXPIRED');
  });

  it('a document dated outside its signing certificate is refused', async () => {
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: Date.parse('2024-12-31T00:00:00Z') });
    expect(await outcome(doc, NOW, [pki.rootDer])).toBe('E_EVIDENCE_EXPIRED');
  });

  it('every real document is refused one hour after its leaf expires', async () => {
    for (const v of Object.values(NITRO_VECTORS))
      expect(await outcome(nitroVectorBytes(v), v.leafNotAfter + 3600)).toBe('E_EVIDENCE_EXPIRED');
  });
});

describe('attack: replay and identity substitution through appraiseEvidence', () => {
  const roots = { nitro: [pki.rootDer] };
  const policy = { ...PRODUCTION_POLICY, name: 'nitro-test' };

  it("a genuine document binding our nonce and the bundle's keys is accepted (control)", async () => {
    const id = identity();
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, userData: reportDataFor(id) });
    const a = await appraiseEvidence(bundle(doc, id), { now: NOW, policy, expectedNonce: id.nonce, roots });
    expect(a.ok, JSON.stringify(a.ok ? [] : a.reasons)).toBe(true);
    if (a.ok) {
      expect(a.facts.teeType).toBe('nitro');
      expect(a.facts.extra.reportDataSource).toBe('user_data');
    }
  });

  it('the report data may travel in a 64-byte nonce instead (control)', async () => {
    const id = identity();
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, nonce: reportDataFor(id) });
    const a = await appraiseEvidence(bundle(doc, id), { now: NOW, policy, expectedNonce: id.nonce, roots });
    expect(a.ok).toBe(true);
  });

  it("replaying yesterday's document for a new nonce: refused (binding)", async () => {
    const old = identity();
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, userData: reportDataFor(old) });
    const fresh = { ...old, nonce: randomBytes(32) };
    const a = await appraiseEvidence(bundle(doc, fresh), {
      now: NOW,
      policy,
      expectedNonce: fresh.nonce,
      roots,
    });
    expect(a).toMatchObject({ ok: false, reasons: [{ code: 'E_EVIDENCE_BINDING' }] });
  });

  it('the host swaps in its own KEM key beside a genuine document: refused (binding)', async () => {
    const id = identity();
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, userData: reportDataFor(id) });
    const swapped = { ...id, kem: randomBytes(32) };
    const a = await appraiseEvidence(bundle(doc, swapped), {
      now: NOW,
      policy,
      expectedNonce: id.nonce,
      roots,
    });
    expect(a).toMatchObject({ ok: false, reasons: [{ code: 'E_EVIDENCE_BINDING' }] });
  });

  it('a document with no report data at all (a real one, replayed): refused', async () => {
    const v = NITRO_VECTORS.base;
    const id = identity();
    const a = await appraiseEvidence(bundle(nitroVectorBytes(v), id), {
      now: Math.floor(v.timestampMs / 1000) + 30,
      policy,
      expectedNonce: id.nonce,
    });
    expect(a).toMatchObject({ ok: false, reasons: [{ code: 'E_EVIDENCE_BINDING' }] });
  });

  it('a debug enclave with a perfect binding: refused by the production policy', async () => {
    const id = identity();
    const doc = await makeSyntheticNitroDocument(pki, {
      timestampMs: T_DOC,
      userData: reportDataFor(id),
      pcrs: syntheticPcrs(true),
    });
    const a = await appraiseEvidence(bundle(doc, id), { now: NOW, policy, expectedNonce: id.nonce, roots });
    expect(a.ok).toBe(false);
    if (!a.ok) {
      expect(a.facts?.debug).toBe(true);
      expect(a.reasons.map((r) => r.message)).toEqual(['debug enclaves are not accepted']);
    }
  });

  it('a genuine, bound document older than the policy freshness: refused', async () => {
    const id = identity();
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, userData: reportDataFor(id) });
    const late = NOW + 3600;
    const a = await appraiseEvidence(bundle(doc, id), { now: late, policy, expectedNonce: id.nonce, roots });
    expect(a).toMatchObject({ ok: false, reasons: [{ code: 'E_EVIDENCE_EXPIRED' }] });
  });

  it('a Nitro document presented as another TEE type is refused by that verifier', async () => {
    const id = identity();
    const doc = await makeSyntheticNitroDocument(pki, { timestampMs: T_DOC, userData: reportDataFor(id) });
    const a = await appraiseEvidence(
      { ...bundle(doc, id), teeType: 'tdx' },
      { now: NOW, policy, expectedNonce: id.nonce, roots: { tdx: [pki.rootDer] } },
    );
    expect(a.ok).toBe(false);
  });
});

describe('attack: a registration claiming another Nitro identity', () => {
  // The node answers the verifier's own fresh nonce with a genuine document (synthetic PKI pinned).
  const id = { address: randomBytes(20), kem: randomBytes(32), operator: randomBytes(20) };
  const node = async (_endpoint: string, nonce: Uint8Array) =>
    bundle(
      await makeSyntheticNitroDocument(pki, {
        timestampMs: T_DOC,
        userData: computeReportData({
          enclaveAddress: id.address,
          kemPublicKey: id.kem,
          nonce,
          operator: id.operator,
        }),
      }),
      { ...id, nonce },
    );
  const pcrs = syntheticPcrs();
  const measurement = measurementDigest('nitro', [pcrs.get(0)!, pcrs.get(1)!, pcrs.get(2)!, pcrs.get(8)!]);
  const claim = (instance: string) => ({
    enclaveId: bytesToHex(computeEnclaveId('nitro', utf8(instance), measurement)),
    teeType: 'nitro' as const,
    measurement: bytesToHex(measurement),
    enclaveAddress: bytesToHex(id.address),
    kemPublicKey: bytesToHex(id.kem),
    endpoint: 'http://node.invalid',
    operator: bytesToHex(id.operator),
  });
  const opts = { now: NOW, policy: PRODUCTION_POLICY, roots: { nitro: [pki.rootDer] }, fetchEvidence: node };

  it('the true identity (parent instance, PCR0..2 and PCR8) is approved (control)', async () => {
    const v = await appraiseRegistration(claim('i-0123456789abcdef0'), opts);
    expect(v.approve, JSON.stringify(v.approve ? [] : v.reasons)).toBe(true);
  });

  it('an Enclave ID for another instance is refused', async () => {
    const v = await appraiseRegistration(claim('i-0fedcba9876543210'), opts);
    expect(v).toMatchObject({ approve: false, reasons: [{ code: 'E_IDENTITY_MISMATCH' }] });
  });

  it('the same evidence under the default (AWS) root is refused: a forged PKI registers nothing', async () => {
    const { roots: _, ...withoutRoots } = opts;
    const v = await appraiseRegistration(claim('i-0123456789abcdef0'), withoutRoots);
    expect(v).toMatchObject({ approve: false, reasons: [{ code: 'E_EVIDENCE_CHAIN' }] });
  });
});
