import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bytesToHex, type GpuEvidenceEntry, hexToBytes, sharedPath } from '@firn/core';
import { createSimulatedGpu, createSimulatedGpuRoot } from '@firn/sim';
import { describeGpuEvidenceVerifierBehaviour } from '../../test/evidenceVerifierBehaviour.ts';
import type { GpuPolicy } from './evaluateGpu.ts';

// The shared EvidenceVerifier behaviour, for the GPU verifier: real H100 (shared nvtrust vector),
// real GB100 and NVSwitch (vectors/nvidia-attestation-sdk), and a simulated GPU. Offline: no RIMs
// or OCSP, so the policy is the cryptographic one (signature, chain, FWID, nonce).
const SDK = fileURLToPath(new URL('../../vectors/nvidia-attestation-sdk/', import.meta.url));
const NVTRUST = (f: string) => sharedPath('vectors', 'attestation', 'nvidia-nvtrust', f);
const NOW = 1764000000;
const BEFORE = Date.parse('2019-01-01T00:00:00Z') / 1000;
const NONCE = '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb';
const policy: GpuPolicy = {
  required: 0,
  requireMeasurementsMatch: false,
  allowRevocationUnchecked: true,
  allowSimulated: false,
};
const entry = (arch: string, reportHexFile: string, chainFile: string): GpuEvidenceEntry => ({
  arch,
  nonce: NONCE,
  evidence: Buffer.from(readFileSync(reportHexFile, 'utf8').trim(), 'hex').toString('base64'),
  certificate: Buffer.from(readFileSync(chainFile)).toString('base64'),
});
const ctx = { now: NOW, expectedNonce: hexToBytes(NONCE) };

describeGpuEvidenceVerifierBehaviour({
  name: 'real H100 (nvtrust)',
  entry: entry('HOPPER', NVTRUST('hopperAttestationReport.txt'), NVTRUST('hopperCertChain.txt')),
  ctx,
  policy,
  expiredAt: BEFORE,
});
describeGpuEvidenceVerifierBehaviour({
  name: 'real GB100 Blackwell (attestation-sdk)',
  entry: entry('BLACKWELL', `${SDK}blackwellAttestationReport.txt`, `${SDK}blackwellCertChain.txt`),
  ctx,
  policy,
  expiredAt: BEFORE,
});
const switchList = JSON.parse(readFileSync(`${SDK}switch_evidence_ls10.json`, 'utf8')) as GpuEvidenceEntry[];
describeGpuEvidenceVerifierBehaviour({
  name: 'real NVSwitch LS10 (attestation-sdk)',
  entry: switchList[0]!,
  ctx: { now: NOW, expectedNonce: hexToBytes(switchList[0]!.nonce) },
  policy,
  expiredAt: BEFORE,
});

const root = await createSimulatedGpuRoot();
const gpu = await createSimulatedGpu({ root, driverVersion: '550.90.07', vbiosVersion: '96.00.9F.00.01' });
const simNonce = new Uint8Array(32).fill(9);
describeGpuEvidenceVerifierBehaviour({
  name: `simulated Hopper (nonce ${bytesToHex(simNonce).slice(2, 10)}…)`,
  entry: await gpu.collect(simNonce),
  ctx: { now: NOW, expectedNonce: simNonce, roots: { simulated: [Buffer.from(root.rootCertPem)] } },
  policy: { ...policy, allowSimulated: true },
});
