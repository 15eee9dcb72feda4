import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GpuEvidenceEntry } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createSimulatedGpu, createSimulatedGpuRoot } from '@firn/sim';
import { PRODUCTION_GPU_POLICY } from '../policy/policy.ts';
import {
  certificateFwid,
  createRimStore,
  evaluateGpu,
  type GpuFacts,
  type GpuPolicy,
  parseSpdmReport,
  pemToDerList,
  verifyGpuEvidenceList,
  verifyRim,
} from './index.ts';

// Vectors: packages/attestation/vectors/nvidia-attestation-sdk (see its SOURCE.md for provenance).
const DIR = fileURLToPath(new URL('../../vectors/nvidia-attestation-sdk/', import.meta.url));
const text = (f: string) => readFileSync(`${DIR}${f}`, 'utf8');
const list = (f: string) => JSON.parse(text(f)) as GpuEvidenceEntry[];
const rim = (n: string) => ({ source: n, xml: text(`rims/${n}`) });
const SWITCH_RIM = 'switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml';
// Device certificates are valid to 9999; the switch RIM's signer from 2026-05-20 to 2027-11-02.
const NOW = 1764000000; // 2025-11-24T16:00:00Z
const RIM_NOW = 1780272000; // 2026-06-01T00:00:00Z
const NVIDIA_NONCE = '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb';

function entry(arch: string, report: string, chain: string, hexReport?: string): GpuEvidenceEntry {
  const hex = hexReport ?? text(report).trim();
  return {
    arch,
    nonce: NVIDIA_NONCE,
    evidence: Buffer.from(hex, 'hex').toString('base64'),
    certificate: Buffer.from(text(chain)).toString('base64'),
  };
}
const blackwell = (hex?: string, arch = 'BLACKWELL') =>
  entry(arch, 'blackwellAttestationReport.txt', 'blackwellCertChain.txt', hex);
const nonceOf = (e: GpuEvidenceEntry) => parseSpdmReport(Buffer.from(e.evidence, 'base64')).requestNonce;
const verify = (entries: GpuEvidenceEntry[], now = NOW, extra: object = {}) =>
  verifyGpuEvidenceList(entries, { now, expectedNonce: nonceOf(entries[0]!), ...extra });
/** Cryptographic checks only: what offline verification can establish without RIMs or OCSP. */
const CRYPTO_ONLY: GpuPolicy = {
  required: 0,
  requireMeasurementsMatch: false,
  allowRevocationUnchecked: true,
  allowSimulated: false,
};
const reasonsOf = (facts: GpuFacts[], p: GpuPolicy) => {
  const v = evaluateGpu(facts, p);
  return v.ok ? [] : v.reasons.map((r) => r.message);
};

describe('Blackwell (real GB100 evidence NVIDIA verifies)', () => {
  it('signature, chain, FWID (DiceTcbInfo fwids[0] under 2.23.133.5.4.1.1) and nonce hold', async () => {
    const [f] = await verify([blackwell()]);
    expect(f).toMatchObject({
      arch: 'BLACKWELL',
      signatureValid: true,
      chainValid: true,
      fwidMatches: true,
      nonceMatches: true,
      driverVersion: '575.32',
      vbiosVersion: '97.00.88.00.0F',
      deviceId: '41E6DE55C3BDC14277',
    });
    expect(reasonsOf([f!], { ...CRYPTO_ONLY, required: 1 })).toEqual([]);
  });
  it('the leaf FWID is the first DICE FWID, not the extension tail (the Hopper rule)', () => {
    const leaf = pemToDerList(text('blackwellCertChain.txt'))[0]!;
    const bw = Buffer.from(certificateFwid(leaf, 'blackwell')!).toString('hex');
    expect(bw).toMatch(/^d090cab1b6e6ffdd/);
    expect(Buffer.from(certificateFwid(leaf, 'hopper')!).toString('hex')).not.toBe(bw);
  });
  it('labelled with another architecture, it is still read as the Blackwell its chain names, and the label is refused', async () => {
    // Decision 1767: the FWID layout (like GPU vs NVSwitch) follows the certified chain, not the label.
    for (const arch of ['HOPPER', 'AMPERE', 'LS10']) {
      const [f] = await verify([blackwell(undefined, arch)]);
      expect(f, arch).toMatchObject({
        arch: 'BLACKWELL',
        kind: 'gpu',
        labelledArch: arch,
        fwidMatches: true,
      });
      expect(reasonsOf([f!], CRYPTO_ONLY), arch).toEqual([
        `device 0 (BLACKWELL): labelled arch "${arch}" but its certificate chain is a BLACKWELL GPU (GB100 A01 GSP BROM)`,
      ]);
    }
  });
  it('tampered (a flipped byte), wrong nonce and not-yet-valid variants are refused', async () => {
    const hex = text('blackwellAttestationReport.txt').trim();
    const b = Buffer.from(hex, 'hex');
    b[200]! ^= 1;
    const [tampered] = await verify([blackwell(b.toString('hex'))]);
    expect(reasonsOf([tampered!], CRYPTO_ONLY).join()).toMatch(/SPDM signature does not verify/);
    const [wrongNonce] = await verifyGpuEvidenceList([blackwell()], {
      now: NOW,
      expectedNonce: new Uint8Array(32).fill(1),
    });
    expect(reasonsOf([wrongNonce!], CRYPTO_ONLY).join()).toMatch(/signed nonce is not the expected nonce/);
    // The device certificates never expire (9999): the time outside their validity is before it.
    const [early] = await verify([blackwell()], Date.parse('2023-01-01T00:00:00Z') / 1000);
    expect(reasonsOf([early!], CRYPTO_ONLY).join()).toMatch(/not yet valid/);
  });
  it('simulated Blackwell GPUs use the same layout: FWID matches, whatever the label says', async () => {
    const root = await createSimulatedGpuRoot();
    const gpu = await createSimulatedGpu({
      root,
      arch: 'BLACKWELL',
      driverVersion: '575.32',
      vbiosVersion: '97.00.88.00.0F',
    });
    const nonce = new Uint8Array(32).fill(3);
    const e = await gpu.collect(nonce);
    const ctx = { now: NOW, expectedNonce: nonce, roots: { simulated: [Buffer.from(root.rootCertPem)] } };
    const [f] = await verifyGpuEvidenceList([e], ctx);
    expect(f).toMatchObject({ arch: 'BLACKWELL', fwidMatches: true, signatureValid: true, simulated: true });
    // Labelled HOPPER, the chain still says Blackwell: the FWID is read the Blackwell way.
    const [asHopper] = await verifyGpuEvidenceList([{ ...e, arch: 'HOPPER' }], ctx);
    expect(asHopper).toMatchObject({ arch: 'BLACKWELL', fwidMatches: true, labelledArch: 'HOPPER' });
    expect(asHopper!.labelProblems).toHaveLength(1);
  });
});

describe('Hopper evidence lists (real H100s, SDK serialisation)', () => {
  it('one GPU and four GPUs verify; the policy decides how many GPUs it needs', async () => {
    const one = await verify(list('hopper_evidence.json'));
    const four = await verify(list('multi_gpu_hopper.json'));
    for (const f of [...one, ...four])
      expect([f.signatureValid, f.chainValid, f.fwidMatches, f.nonceMatches]).toEqual([
        true,
        true,
        true,
        true,
      ]);
    expect(new Set(four.map((f) => f.deviceId)).size).toBe(4);
    expect(reasonsOf(four, { ...CRYPTO_ONLY, required: 4 })).toEqual([]);
    expect(reasonsOf(four, { ...CRYPTO_ONLY, required: 5 })).toEqual(['4 GPU(s) presented, 5 required']);
    expect(reasonsOf(one, { ...CRYPTO_ONLY, required: 1 })).toEqual([]);
  });
  it("NVIDIA's invalid-signature report is refused", async () => {
    const e = entry('HOPPER', 'hopperAttestationReportInvalidSignature.txt', 'hopperCertChainExpired.txt');
    const [f] = await verify([e]);
    expect(f!.signatureValid).toBe(false);
    expect(evaluateGpu([f!], CRYPTO_ONLY).ok).toBe(false);
  });
  it("edited RIMs (NVIDIA's measurement-mismatch files) and an expired RIM are refused by the production GPU rules", async () => {
    const mm = await verify([entry('HOPPER', 'hopperAttestationReport.txt', 'hopperCertChain.txt')], NOW, {
      rims: createRimStore([
        rim('NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml'),
        rim('NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml'),
      ]),
    });
    expect(mm[0]!.measurements).not.toBe('match');
    expect(reasonsOf(mm, PRODUCTION_GPU_POLICY).join()).toMatch(/no verified RIM/);
    const exp = await verify(
      [entry('HOPPER', 'hopperAttestationReportExpired.txt', 'hopperCertChainExpired.txt')],
      NOW,
      {
        rims: createRimStore([rim('NV_GPU_DRIVER_GH100_570.124.03_expired.xml')]),
      },
    );
    expect(exp[0]!.rims.driver).toMatchObject({ chainValid: false });
    expect(reasonsOf(exp, PRODUCTION_GPU_POLICY).join()).toMatch(/no verified RIM/);
    expect(
      verifyRim(rim('NV_GPU_DRIVER_GH100_570.124.03_expired.xml').xml, { now: NOW }).chainProblems,
    ).toEqual(['certificate 0 has expired']);
  });
  it('a GPU whose certificate is on hold verifies offline, and production refuses it: revocation unchecked', async () => {
    const facts = await verify(list('hopper_evidence_cert_hold.json'));
    expect(facts[0]!.signatureValid && facts[0]!.chainValid).toBe(true);
    expect(reasonsOf(facts, PRODUCTION_GPU_POLICY).join()).toMatch(/revocation not checked/);
  });
});

describe('NVSwitch evidence verifies on its own', () => {
  const rims = () => createRimStore([rim(SWITCH_RIM)]);
  it('switch-only evidence: signature, chain, nonce and RIM match; accepted with no GPU required', async () => {
    for (const f of ['switch_evidence_ls10.json', 'multi_switch_ls10.json']) {
      const facts = await verify(list(f), RIM_NOW, { rims: rims() });
      for (const s of facts)
        expect([s.signatureValid, s.chainValid, s.fwidMatches, s.nonceMatches, s.measurements], f).toEqual([
          true,
          true,
          null,
          true,
          'match',
        ]);
      expect(reasonsOf(facts, { ...CRYPTO_ONLY, requireMeasurementsMatch: true }), f).toEqual([]);
    }
    const sample = await verify(
      [entry('LS10', 'switchAttestationReport.txt', 'switchCertChain.txt')],
      RIM_NOW,
      {
        rims: rims(),
      },
    );
    expect(sample[0]!.measurements).toBe('match');
  });
  it('the policy decides how many switches it needs, and GPUs are counted apart', async () => {
    const one = await verify(list('switch_evidence_ls10.json'), RIM_NOW, { rims: rims() });
    expect(reasonsOf(one, { ...CRYPTO_ONLY, requiredSwitches: 1 })).toEqual([]);
    expect(reasonsOf(one, { ...CRYPTO_ONLY, requiredSwitches: 2 })).toEqual([
      '1 NVSwitch(es) presented, 2 required',
    ]);
    expect(reasonsOf(one, { ...CRYPTO_ONLY, required: 1 })).toEqual(['0 GPU(s) presented, 1 required']);
  });
  it('tampered switch evidence, a bad-signature report and an edited RIM are refused', async () => {
    const bad = await verify(
      [entry('LS10', 'switchAttestationReportInvalidSignature.txt', 'switchCertChain.txt')],
      RIM_NOW,
    );
    expect(bad[0]!.signatureValid).toBe(false);
    const mm = await verify(list('switch_evidence_ls10.json'), RIM_NOW, {
      rims: createRimStore([rim('NV_SWITCH_BIOS_5612_0002_890_9610550001_measurement_mismatch.xml')]),
    });
    expect(reasonsOf(mm, { ...CRYPTO_ONLY, requireMeasurementsMatch: true }).join()).toMatch(
      /no verified RIM/,
    );
    const inv = await verify(list('switch_evidence_ls10.json'), RIM_NOW, {
      rims: createRimStore([rim('NV_SWITCH_BIOS_5612_0002_890_9610550001_invalid_signature.xml')]),
    });
    expect(inv[0]!.measurements).toBe('no-rim');
    // Before the switch RIM's signer is valid, the RIM does not count.
    const early = await verify(list('switch_evidence_ls10.json'), NOW, { rims: rims() });
    expect(early[0]!.measurements).toBe('no-rim');
  });
});

describe('production GPU section (RIM match, CC mode, revocation checked or in a grace)', () => {
  const good = {
    signatureValid: true,
    chainValid: true,
    chainProblems: [],
    fwidMatches: true,
    nonceMatches: true,
    measurements: 'match',
    mismatchingIndexes: [],
    revocation: 'checked',
    revocationStaleSeconds: 0,
    revoked: false,
    simulated: false,
  } as const;
  // Facts come from the verifier; here each rule is driven by the one fact it reads.
  const facts = (over: Partial<GpuFacts>) => [
    {
      ...(good as unknown as GpuFacts),
      arch: 'HOPPER',
      kind: 'gpu' as const,
      hwmodel: 'GH100 A01 GSP BROM',
      labelledArch: 'HOPPER',
      labelProblems: [],
      ...over,
    },
  ];
  it('accepts a GPU whose measurements match and whose revocation was checked', () => {
    expect(reasonsOf(facts({}), PRODUCTION_GPU_POLICY)).toEqual([]);
  });
  it('refuses a RIM mismatch and a GPU with no verified RIM', () => {
    expect(
      reasonsOf(facts({ measurements: 'mismatch', mismatchingIndexes: [3] }), PRODUCTION_GPU_POLICY),
    ).toEqual(['device 0 (HOPPER): measurements differ from the RIM at indexes 3']);
    expect(reasonsOf(facts({ measurements: 'no-rim' }), PRODUCTION_GPU_POLICY).join()).toMatch(
      /no verified RIM/,
    );
  });
  it('revocation: unchecked refused; a stale answer inside the grace accepted, outside refused; revoked refused', () => {
    expect(
      reasonsOf(
        facts({ revocation: 'not-checked', revocationStaleSeconds: null }),
        PRODUCTION_GPU_POLICY,
      ).join(),
    ).toMatch(/revocation not checked/);
    expect(
      reasonsOf(facts({ revocation: 'not-checked', revocationStaleSeconds: 3600 }), PRODUCTION_GPU_POLICY),
    ).toEqual([]);
    expect(
      reasonsOf(
        facts({ revocation: 'not-checked', revocationStaleSeconds: 86401 }),
        PRODUCTION_GPU_POLICY,
      ).join(),
    ).toMatch(/over the policy's grace of 86400 s/);
    expect(reasonsOf(facts({ revoked: true }), PRODUCTION_GPU_POLICY).join()).toMatch(/revoked/);
  });
  it('refuses simulated GPUs', () => {
    expect(reasonsOf(facts({ simulated: true }), PRODUCTION_GPU_POLICY).join()).toMatch(/simulated/);
  });
});
