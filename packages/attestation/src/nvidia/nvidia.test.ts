import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bytesToHex, hexToBytes, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createSimulatedGpu, createSimulatedGpuRoot } from '@firn/sim';
import {
  compareMeasurements,
  createRimStore,
  evaluateGpu,
  type GpuPolicy,
  loadRims,
  NVIDIA_DEVICE_ROOT_PEM,
  NVIDIA_DEVICE_ROOT_SHA256,
  NVIDIA_RIM_ROOT_PEM,
  NVIDIA_RIM_ROOT_SHA256,
  parseSpdmReport,
  pemToDerList,
  verifyGpuEvidence,
  verifyGpuEvidenceList,
  verifyRim,
} from './index.ts';

// Vectors: ../shared/vectors/attestation/nvidia-nvtrust (see its SOURCE.md for provenance).
const V = (...p: string[]) => sharedPath('vectors', 'attestation', 'nvidia-nvtrust', ...p);
const HOPPER_HEX = readFileSync(V('hopperAttestationReport.txt'), 'utf8').trim();
const HOPPER_CHAIN = readFileSync(V('hopperCertChain.txt'), 'utf8');
const HOPPER_NONCE = hexToBytes('931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb');
const NVTRUST_TEST_NONCE = hexToBytes('4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e');
const PPCIE_NONCE = hexToBytes('4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e');
// 2024-06-01: inside every vector certificate's validity (device certs to 9999, RIM signers to mid-2025).
const NOW = 1717200000;
const rim = (n: string) => readFileSync(V('rims', n), 'utf8');

function hopperEntry(hex = HOPPER_HEX, chain = HOPPER_CHAIN) {
  return {
    arch: 'HOPPER',
    nonce: bytesToHex(HOPPER_NONCE).slice(2),
    evidence: Buffer.from(hex, 'hex').toString('base64'),
    certificate: Buffer.from(chain).toString('base64'),
  };
}
const pemFp = (pem: string) => createHash('sha256').update(pemToDerList(pem)[0]!).digest('hex');

describe('pinned roots', () => {
  it('match the fingerprints in the vector SOURCE.md and the vector files', () => {
    expect(pemFp(NVIDIA_DEVICE_ROOT_PEM)).toBe(NVIDIA_DEVICE_ROOT_SHA256);
    expect(pemFp(NVIDIA_RIM_ROOT_PEM)).toBe(NVIDIA_RIM_ROOT_SHA256);
    expect(pemFp(readFileSync(V('certs', 'verifier_device_root.pem'), 'utf8'))).toBe(
      NVIDIA_DEVICE_ROOT_SHA256,
    );
    expect(pemFp(readFileSync(V('certs', 'verifier_RIM_root.pem'), 'utf8'))).toBe(NVIDIA_RIM_ROOT_SHA256);
  });
});

describe('parseSpdmReport', () => {
  it('parses the real H100 report', () => {
    const r = parseSpdmReport(hexToBytes(HOPPER_HEX));
    expect(bytesToHex(r.requestNonce)).toBe(bytesToHex(HOPPER_NONCE));
    expect(r.driverVersion).toBe('550.90.07');
    expect(r.vbiosVersion).toBe('96.00.9F.00.01');
    expect([r.project, r.projectSku, r.chipSku]).toEqual(['1010', '0200', '882']);
    expect(r.blocks).toHaveLength(64);
    expect(r.signature).toHaveLength(96);
  });
  it('refuses truncation, trailing bytes, a non-SPDM header and oversize input with typed errors', () => {
    const b = hexToBytes(HOPPER_HEX);
    expect(() => parseSpdmReport(b.subarray(0, b.length - 1))).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
    expect(() => parseSpdmReport(new Uint8Array([...b, 0]))).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
    const wrong = b.slice();
    wrong[1] = 0xe1;
    expect(() => parseSpdmReport(wrong)).toThrow(expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }));
    expect(() => parseSpdmReport(new Uint8Array(70000))).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
  });
});

describe('verifyGpuEvidence on the real H100 vector', () => {
  it('signature, chain, FWID and nonce verify', async () => {
    const f = await verifyGpuEvidence(hopperEntry(), { now: NOW, expectedNonce: HOPPER_NONCE });
    expect(f).toMatchObject({
      arch: 'HOPPER',
      signatureValid: true,
      chainValid: true,
      fwidMatches: true,
      nonceMatches: true,
      driverVersion: '550.90.07',
      vbiosVersion: '96.00.9F.00.01',
      measurements: 'no-rim',
      revocation: 'not-checked',
      simulated: false,
      deviceId: '41431D480FE5E87274',
    });
    expect(f.chainNotAfter).toBe(253402300799);
  });
  it("nvtrust's test-mode nonce does not match (negative vector)", async () => {
    const f = await verifyGpuEvidence(hopperEntry(), { now: NOW, expectedNonce: NVTRUST_TEST_NONCE });
    expect(f.nonceMatches).toBe(false);
    expect(f.signatureValid).toBe(true);
  });
  it('a flipped byte in a measurement or in the signature breaks the signature', async () => {
    // 110: inside the value of measurement block 2; the second: inside the signature.
    for (const at of [110, HOPPER_HEX.length / 2 - 10]) {
      const b = hexToBytes(HOPPER_HEX);
      b[at]! ^= 0x01;
      const f = await verifyGpuEvidence(hopperEntry(Buffer.from(b).toString('hex')), {
        now: NOW,
        expectedNonce: HOPPER_NONCE,
      });
      expect(f.signatureValid).toBe(false);
    }
  });
  it('a flipped nonce byte is both unsigned and a nonce mismatch', async () => {
    const b = hexToBytes(HOPPER_HEX);
    b[4]! ^= 0x80;
    const f = await verifyGpuEvidence(hopperEntry(Buffer.from(b).toString('hex')), {
      now: NOW,
      expectedNonce: HOPPER_NONCE,
    });
    expect(f.signatureValid).toBe(false);
    expect(f.nonceMatches).toBe(false);
  });
  it('a chain to another root is not valid', async () => {
    const other = await createSimulatedGpuRoot();
    const f = await verifyGpuEvidence(hopperEntry(), {
      now: NOW,
      expectedNonce: HOPPER_NONCE,
      roots: { device: [Buffer.from(other.rootCertPem)] },
    });
    expect(f.chainValid).toBe(false);
    expect(f.chainProblems.join()).toMatch(/trusted root/);
  });
  it('a chain missing its middle certificate is not valid', async () => {
    const certs = HOPPER_CHAIN.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!;
    const f = await verifyGpuEvidence(
      hopperEntry(HOPPER_HEX, [certs[0], certs[2], certs[3], certs[4]].join('\n')),
      {
        now: NOW,
        expectedNonce: HOPPER_NONCE,
      },
    );
    expect(f.chainValid).toBe(false);
  });
  it('a time before the chain is valid makes it invalid', async () => {
    const f = await verifyGpuEvidence(hopperEntry(), { now: 1500000000, expectedNonce: HOPPER_NONCE });
    expect(f.chainValid).toBe(false);
  });
});

describe('ppcie evidence lists (8 x H100, 4 x NVSwitch)', () => {
  const gpus = JSON.parse(readFileSync(V('ppcie', 'gpu_evidence.json'), 'utf8'));
  const switches = JSON.parse(readFileSync(V('ppcie', 'switch_evidence.json'), 'utf8'));
  it('all 12 entries verify with the requester nonce', async () => {
    const facts = await verifyGpuEvidenceList([...gpus, ...switches], {
      now: NOW,
      expectedNonce: PPCIE_NONCE,
    });
    expect(facts).toHaveLength(12);
    for (const f of facts)
      expect([f.signatureValid, f.chainValid, f.nonceMatches, f.fwidMatches !== false]).toEqual([
        true,
        true,
        true,
        true,
      ]);
    expect(
      facts.slice(0, 8).every((f) => f.driverVersion === '590.12' && f.vbiosVersion === '96.00.A5.00.01'),
    ).toBe(true);
    expect(
      facts
        .slice(8)
        .every((f) => f.arch === 'LS10' && f.driverVersion === null && f.vbiosVersion === '96.10.73.00.01'),
    ).toBe(true);
    const policy: GpuPolicy = {
      required: 8,
      requireMeasurementsMatch: false,
      allowRevocationUnchecked: true,
      allowSimulated: false,
    };
    expect(evaluateGpu(facts, policy)).toEqual({ ok: true });
    const strict = evaluateGpu(facts, {
      ...policy,
      required: 9,
      allowRevocationUnchecked: false,
      acceptedDriverVersions: ['590.13'],
    });
    expect(strict.ok).toBe(false);
    if (!strict.ok) {
      expect(strict.reasons.filter((r) => r.code === 'E_EVIDENCE_REVOKED')).toHaveLength(12);
      expect(strict.reasons.filter((r) => r.message.includes('driver version'))).toHaveLength(8);
      expect(strict.reasons.some((r) => r.message.includes('9 required'))).toBe(true);
    }
  });
  it('another nonce does not match', async () => {
    const facts = await verifyGpuEvidenceList(gpus.slice(0, 1), { now: NOW, expectedNonce: HOPPER_NONCE });
    expect(facts[0]!.nonceMatches).toBe(false);
  });
});

describe('RIMs', () => {
  it('every vector RIM verifies (signature and chain) at a time inside its validity', () => {
    const driver = verifyRim(rim('Driver_RIM_test_no_gpu.swidtag'), { now: NOW });
    expect([driver.signatureValid, driver.chainValid, driver.kind, driver.version]).toEqual([
      true,
      true,
      'driver',
      '545.00',
    ]);
    const vb = verifyRim(rim('1010_0200_882_96005E0001_PROD.swidtag'), { now: NOW });
    expect([vb.signatureValid, vb.chainValid, vb.kind, vb.version]).toEqual([
      true,
      true,
      'vbios',
      '96.00.5E.00.01',
    ]);
  });
  it('an expired RIM signer chain is reported', () => {
    const f = verifyRim(rim('Driver_RIM_test_no_gpu.swidtag'), { now: 1767225600 /* 2026-01-01 */ });
    expect(f.signatureValid).toBe(true);
    expect(f.chainValid).toBe(false);
    expect(f.chainProblems.join()).toMatch(/expired/);
  });
  it('a changed reference value or signature value does not verify', () => {
    const x = rim('Driver_RIM_test_no_gpu.swidtag');
    const changed = x.replace('0e0ee161b59bf124', '0e0ee161b59bf125');
    expect(changed).not.toBe(x);
    expect(verifyRim(changed, { now: NOW }).signatureValid).toBe(false);
    const sig = x.replace('<ds:SignatureValue>/BgnH', '<ds:SignatureValue>/BgnI');
    expect(verifyRim(sig, { now: NOW }).signatureValid).toBe(false);
  });
  it('a RIM chained to another root is not valid', async () => {
    const other = await createSimulatedGpuRoot();
    const f = verifyRim(rim('Driver_RIM_test_no_gpu.swidtag'), {
      now: NOW,
      roots: [Buffer.from(other.rootCertPem)],
    });
    expect(f.chainValid).toBe(false);
  });
  it('refuses a DTD and a second signature', () => {
    const x = rim('Driver_RIM_test_no_gpu.swidtag');
    expect(() => verifyRim(`<!DOCTYPE x [<!ENTITY a "b">]>${x}`, { now: NOW })).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
    const sig = x.slice(x.indexOf('<ds:Signature'), x.indexOf('</SoftwareIdentity>'));
    expect(() =>
      verifyRim(x.replace('</SoftwareIdentity>', `${sig}</SoftwareIdentity>`), { now: NOW }),
    ).toThrow(/exactly one signature/);
  });
  it('the test RIMs differ from the real H100 report at 20 indexes (SOURCE.md)', () => {
    const report = parseSpdmReport(hexToBytes(HOPPER_HEX));
    const d = verifyRim(rim('Driver_RIM_test_no_gpu.swidtag'), { now: NOW });
    const v = verifyRim(rim('1010_0200_882_96005E0001_test_no_gpu.swidtag'), { now: NOW });
    const cmp = compareMeasurements(report, [d, v]);
    expect(cmp.compared).toBe(33);
    expect(cmp.mismatchingIndexes).toEqual([
      1, 2, 3, 7, 9, 11, 21, 22, 25, 26, 27, 29, 30, 31, 32, 34, 36, 37, 39, 40,
    ]);
  });
  it('with the vector RIM directory the H100 has no RIM for its versions, and a strict policy refuses', async () => {
    const store = await loadRims(V('rims'));
    expect(store.entries.length).toBe(26);
    const f = await verifyGpuEvidence(hopperEntry(), { now: NOW, expectedNonce: HOPPER_NONCE, rims: store });
    expect(f.measurements).toBe('no-rim');
    const r = evaluateGpu([f], {
      required: 1,
      requireMeasurementsMatch: true,
      allowRevocationUnchecked: true,
      allowSimulated: false,
    });
    expect(r.ok).toBe(false);
  });
  it('a RimStore selects RIMs by kind and version only', () => {
    const store = createRimStore([{ source: 'd', xml: rim('Driver_RIM_test_no_gpu.swidtag') }]);
    expect(store.find('driver', '545.00')?.rim.kind).toBe('driver');
    expect(store.find('driver', '550.90.07')).toBeUndefined();
  });
});

describe('simulated GPU through the same verifier', () => {
  it('verifies only with its root passed as simulated, and a production policy refuses it', async () => {
    const root = await createSimulatedGpuRoot();
    const gpu = await createSimulatedGpu({
      root,
      driverVersion: '550.90.07',
      vbiosVersion: '96.00.9F.00.01',
    });
    const nonce = new Uint8Array(32).fill(7);
    const entry = await gpu.collect(nonce);
    const unknown = await verifyGpuEvidence(entry, { now: NOW, expectedNonce: nonce });
    expect(unknown.chainValid).toBe(false);
    expect(unknown.simulated).toBe(false);
    const f = await verifyGpuEvidence(entry, {
      now: NOW,
      expectedNonce: nonce,
      roots: { simulated: [Buffer.from(root.rootCertPem)] },
    });
    expect(f).toMatchObject({
      signatureValid: true,
      chainValid: true,
      fwidMatches: true,
      nonceMatches: true,
      simulated: true,
    });
    expect(f.driverVersion).toBe('550.90.07');
    expect(f.vbiosVersion).toBe('96.00.9F.00.01');
    const prod: GpuPolicy = {
      required: 1,
      requireMeasurementsMatch: false,
      allowRevocationUnchecked: true,
      allowSimulated: false,
    };
    expect(evaluateGpu([f], prod).ok).toBe(false);
    expect(evaluateGpu([f], { ...prod, allowSimulated: true })).toEqual({ ok: true });
  });
});
