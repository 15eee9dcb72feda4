import { readFileSync } from 'node:fs';
import type { GpuEvidenceEntry } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  createRimStore,
  evaluateGpu,
  type GpuPolicy,
  parseSpdmReport,
  verifyGpuEvidenceList,
} from '../../packages/attestation/src/nvidia/index.ts';
import { PRODUCTION_GPU_POLICY } from '../../packages/attestation/src/policy/policy.ts';

// The `arch` of a GPU evidence entry is the host's word, not the device's: verification reads it
// to choose the FWID layout and evaluateGpu to tell GPUs from NVSwitches. A malicious host whose
// policy requires a confidential-computing GPU presents a real NVSwitch's signed evidence
// (genuine chain, nonce, firmware RIM match) labelled "HOPPER": it counts as the GPU. NVIDIA's
// GPU verifier refuses a switch report (its chain is an LS10 switch chain and it carries no
// driver version, so no driver RIM); the kind of device must come from the signed evidence.
const DIR = new URL('../../packages/attestation/vectors/nvidia-attestation-sdk/', import.meta.url);
const text = (f: string) => readFileSync(new URL(f, DIR), 'utf8');
const SWITCH_RIM = 'switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml';
const RIM_NOW = 1780272000; // 2026-06-01T00:00:00Z, inside the RIM signer's validity

// OCSP is not reachable offline; every other production GPU rule applies, with one GPU required.
const ONE_GPU: GpuPolicy = { ...PRODUCTION_GPU_POLICY, required: 1, allowRevocationUnchecked: true };

async function appraise(entries: GpuEvidenceEntry[]) {
  const facts = await verifyGpuEvidenceList(entries, {
    now: RIM_NOW,
    expectedNonce: parseSpdmReport(Buffer.from(entries[0]!.evidence, 'base64')).requestNonce,
    rims: createRimStore([{ source: SWITCH_RIM, xml: text(`rims/${SWITCH_RIM}`) }]),
  });
  return evaluateGpu(facts, ONE_GPU);
}

describe('attack: an NVSwitch presented as the required GPU', () => {
  it('control: labelled LS10, the switch does not count as a GPU', async () => {
    const entries = JSON.parse(text('switch_evidence_ls10.json')) as GpuEvidenceEntry[];
    const v = await appraise(entries);
    expect(v.ok).toBe(false);
  });
  it('the same signed switch evidence labelled HOPPER does not count as a GPU either', async () => {
    const entries = (JSON.parse(text('switch_evidence_ls10.json')) as GpuEvidenceEntry[]).map((e) => ({
      ...e,
      arch: 'HOPPER',
    }));
    const v = await appraise(entries);
    expect(v.ok, 'an NVSwitch passed as the one GPU the policy requires').toBe(false);
  });
});

describe('attack: a GPU labelled as an NVSwitch escapes the driver-version rule', () => {
  // A policy pinning the GPU driver (acceptedDriverVersions) judges only entries labelled as GPUs.
  // The host labels its real H100 (driver 550.90.07) "LS10" and the pin is skipped.
  const V = '/work/shared/vectors/attestation/nvidia-nvtrust/';
  const hopper = (arch: string): GpuEvidenceEntry => ({
    arch,
    nonce: '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
    evidence: Buffer.from(readFileSync(`${V}hopperAttestationReport.txt`, 'utf8').trim(), 'hex').toString(
      'base64',
    ),
    certificate: Buffer.from(readFileSync(`${V}hopperCertChain.txt`, 'utf8')).toString('base64'),
  });
  const PINNED: GpuPolicy = {
    required: 0,
    requireMeasurementsMatch: false,
    allowRevocationUnchecked: true,
    allowSimulated: false,
    acceptedDriverVersions: ['570.00'],
  };
  const judge = async (e: GpuEvidenceEntry) =>
    evaluateGpu(
      await verifyGpuEvidenceList([e], {
        now: 1764000000,
        expectedNonce: parseSpdmReport(Buffer.from(e.evidence, 'base64')).requestNonce,
      }),
      PINNED,
    );
  it('control: labelled HOPPER, driver 550.90.07 is refused by the pin', async () => {
    expect((await judge(hopper('HOPPER'))).ok).toBe(false);
  });
  it('labelled LS10, the same GPU is refused by the pin too', async () => {
    expect((await judge(hopper('LS10'))).ok, 'the driver pin was skipped for a GPU called a switch').toBe(
      false,
    );
  });
});
