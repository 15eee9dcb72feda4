import { readFileSync } from 'node:fs';
import { type GpuEvidenceEntry, sharedPath } from '@firn/core';
import { createSimulatedGpu, createSimulatedGpuRoot } from '@firn/sim';
import { describe, expect, it } from 'vitest';
import { deviceModelOf } from './deviceModel.ts';
import {
  createRimServiceClient,
  evaluateGpu,
  type GpuPolicy,
  parseSpdmReport,
  pemToDerList,
  verifyGpuEvidenceList,
} from './index.ts';

// What kind of device an entry is (GPU or NVSwitch, which architecture) is read from its certified
// chain, as NVIDIA's verifiers report it (hwmodel: the common name of the device identity "BROM"
// certificate), never from the host's `arch` label; a label that disagrees is refused.
const SDK = new URL('../../vectors/nvidia-attestation-sdk/', import.meta.url);
const sdk = (f: string) => readFileSync(new URL(f, SDK), 'utf8');
const V = (...p: string[]) => sharedPath('vectors', 'attestation', 'nvidia-nvtrust', ...p);
const chainOf = (pem: string) => pemToDerList(pem);
const SWITCH = JSON.parse(sdk('switch_evidence_ls10.json')) as GpuEvidenceEntry[];
const HOPPER: GpuEvidenceEntry = {
  arch: 'HOPPER',
  nonce: '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
  evidence: Buffer.from(readFileSync(V('hopperAttestationReport.txt'), 'utf8').trim(), 'hex').toString(
    'base64',
  ),
  certificate: Buffer.from(readFileSync(V('hopperCertChain.txt'), 'utf8')).toString('base64'),
};
const LENIENT: GpuPolicy = {
  required: 0,
  requireMeasurementsMatch: false,
  allowRevocationUnchecked: true,
  allowSimulated: true,
};
const nonceOf = (e: GpuEvidenceEntry) => parseSpdmReport(Buffer.from(e.evidence, 'base64')).requestNonce;

describe('deviceModelOf', () => {
  it('reads GPU or NVSwitch and the architecture from the device identity certificate', () => {
    expect(deviceModelOf(chainOf(readFileSync(V('hopperCertChain.txt'), 'utf8')))).toEqual({
      kind: 'gpu',
      arch: 'HOPPER',
      hwmodel: 'GH100 A01 GSP BROM',
    });
    expect(deviceModelOf(chainOf(sdk('blackwellCertChain.txt')))).toEqual({
      kind: 'gpu',
      arch: 'BLACKWELL',
      hwmodel: 'GB100 A01 GSP BROM',
    });
    expect(deviceModelOf(chainOf(sdk('switchCertChain.txt')))).toEqual({
      kind: 'nvswitch',
      arch: 'LS10',
      hwmodel: 'LS_10 A01 FSP BROM',
    });
  });
  it('knows no model for a chain without a device identity certificate', () => {
    const leafOnly = chainOf(readFileSync(V('hopperCertChain.txt'), 'utf8')).slice(0, 1);
    expect(deviceModelOf(leafOnly).kind).toBe('unknown');
  });
});

describe('attack: the host labels a device as another kind', () => {
  it('a real NVSwitch labelled HOPPER is an LS10 switch in the facts and the label is refused, by index', async () => {
    const facts = await verifyGpuEvidenceList([{ ...SWITCH[0]!, arch: 'HOPPER' }], {
      now: 1780272000,
      expectedNonce: nonceOf(SWITCH[0]!),
    });
    expect(facts[0]).toMatchObject({ arch: 'LS10', kind: 'nvswitch', labelledArch: 'HOPPER' });
    const v = evaluateGpu(facts, { ...LENIENT, required: 1 });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.reasons).toContainEqual(
      expect.objectContaining({
        code: 'E_EVIDENCE_MALFORMED',
        message: expect.stringMatching(/^device 0\b.*HOPPER.*LS10/),
      }),
    );
    expect(v.reasons.map((r) => r.message)).toContain('0 GPU(s) presented, 1 required');
  });

  it('a real H100 labelled LS10 is a HOPPER GPU in the facts, the driver pin applies and the label is refused', async () => {
    const facts = await verifyGpuEvidenceList([{ ...HOPPER, arch: 'LS10' }], {
      now: 1764000000,
      expectedNonce: nonceOf(HOPPER),
    });
    expect(facts[0]).toMatchObject({ arch: 'HOPPER', kind: 'gpu', fwidMatches: true });
    const v = evaluateGpu(facts, { ...LENIENT, acceptedDriverVersions: ['550.90.07'] });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.reasons).toEqual([
      { code: 'E_EVIDENCE_MALFORMED', message: expect.stringMatching(/^device 0 \(HOPPER\): .*LS10/) },
    ]);
    // Labelled truthfully, the same evidence passes the same policy.
    const honest = await verifyGpuEvidenceList([HOPPER], { now: 1764000000, expectedNonce: nonceOf(HOPPER) });
    expect(evaluateGpu(honest, { ...LENIENT, acceptedDriverVersions: ['550.90.07'] })).toEqual({ ok: true });
  });

  it('a Blackwell GPU labelled HOPPER has its FWID read with the Blackwell layout of its chain', async () => {
    const root = await createSimulatedGpuRoot();
    const gpu = await createSimulatedGpu({
      root,
      arch: 'BLACKWELL',
      driverVersion: '570.10',
      vbiosVersion: '97.00.11.00.01',
    });
    const nonce = new Uint8Array(32).fill(3);
    const entry = { ...(await gpu.collect(nonce)), arch: 'HOPPER' };
    const facts = await verifyGpuEvidenceList([entry], {
      now: 1764000000,
      expectedNonce: nonce,
      roots: { simulated: [Buffer.from(root.rootCertPem)] },
    });
    expect(facts[0]).toMatchObject({ arch: 'BLACKWELL', kind: 'gpu', fwidMatches: true });
    const v = evaluateGpu(facts, LENIENT);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reasons.map((r) => r.code)).toEqual(['E_EVIDENCE_MALFORMED']);
  });

  it('host driver_version / vbios_version / nonce labels that disagree with the signed report are refused', async () => {
    const root = await createSimulatedGpuRoot();
    const gpu = await createSimulatedGpu({
      root,
      driverVersion: '550.90.07',
      vbiosVersion: '96.00.9F.00.01',
    });
    const nonce = new Uint8Array(32).fill(5);
    const honest = await gpu.collect(nonce);
    const ctx = {
      now: 1764000000,
      expectedNonce: nonce,
      roots: { simulated: [Buffer.from(root.rootCertPem)] },
    };
    expect(evaluateGpu(await verifyGpuEvidenceList([honest], ctx), LENIENT)).toEqual({ ok: true });
    for (const [field, value] of [
      ['driver_version', '570.00'],
      ['vbios_version', '96.00.AA.00.01'],
      ['nonce', '00'.repeat(32)],
    ] as const) {
      const v = evaluateGpu(
        await verifyGpuEvidenceList([{ ...honest }, { ...honest, [field]: value }], ctx),
        LENIENT,
      );
      expect(v.ok, field).toBe(false);
      if (!v.ok)
        expect(v.reasons, field).toEqual([
          {
            code: 'E_EVIDENCE_MALFORMED',
            message: expect.stringMatching(new RegExp(`^device 1 .*${field}`)),
          },
        ]);
    }
  });

  it('an unknown device model is refused, whatever the label says', async () => {
    const facts = await verifyGpuEvidenceList([HOPPER], { now: 1764000000, expectedNonce: nonceOf(HOPPER) });
    const unknown = {
      ...facts[0]!,
      kind: 'unknown' as const,
      arch: 'UNKNOWN',
      hwmodel: 'GX999 A01 GSP BROM',
    };
    const v = evaluateGpu([unknown], LENIENT);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reasons.map((r) => r.code)).toContain('E_UNSUPPORTED');
  });
});

describe('attack: the label chooses which RIMs are fetched', () => {
  const ids = async (entries: GpuEvidenceEntry[]) => {
    const asked: string[] = [];
    const client = createRimServiceClient({
      baseUrl: 'http://127.0.0.1:9',
      retries: 0,
      fetch: (async (url: string | URL) => {
        asked.push(decodeURIComponent(String(url).split('/').pop() ?? ''));
        return new Response('{"error":"not found"}', { status: 404 });
      }) as typeof fetch,
    });
    const store = await client.rimStoreFor(entries);
    return { asked: asked.sort(), missing: store.missing.sort() };
  };
  it('a GPU labelled LS10 still gets its driver RIM and its GPU VBIOS RIM', async () => {
    expect(await ids([{ ...HOPPER, arch: 'LS10' }])).toEqual(await ids([HOPPER]));
    expect((await ids([HOPPER])).missing).toEqual([
      'NV_GPU_DRIVER_GH100_550.90.07',
      'NV_GPU_VBIOS_1010_0200_882_96009F0001',
    ]);
  });
});
