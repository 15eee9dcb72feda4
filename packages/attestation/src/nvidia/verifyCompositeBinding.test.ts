import { computeReportData, deriveGpuNonce, gpuEvidenceDigest } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createSimulatedGpu, createSimulatedGpuRoot } from '@firn/sim';
import { verifyCompositeBinding } from './verifyCompositeBinding.ts';
import { verifyGpuEvidenceList } from './verifyGpuEvidence.ts';

// Covers the binding between CPU report data and GPU evidence; the CPU quote itself is not verified here.
describe('verifyCompositeBinding', () => {
  it('accepts bound evidence and refuses unbound, reordered or wrong-nonce evidence', async () => {
    const root = await createSimulatedGpuRoot();
    const gpus = [
      await createSimulatedGpu({ root, driverVersion: '550.90.07', vbiosVersion: '96.00.9F.00.01' }),
      await createSimulatedGpu({ root, driverVersion: '550.90.07', vbiosVersion: '96.00.9F.00.01' }),
    ];
    const id = {
      enclaveAddress: new Uint8Array(20).fill(1),
      kemPublicKey: new Uint8Array(32).fill(2),
      nonce: new Uint8Array(32).fill(3),
    };
    const gpuNonce = deriveGpuNonce(id.nonce);
    const entries = [await gpus[0]!.collect(gpuNonce), await gpus[1]!.collect(gpuNonce)];
    const reportData = computeReportData({ ...id, gpuEvidenceDigest: gpuEvidenceDigest(entries) });
    expect(() => verifyCompositeBinding(reportData, id, entries)).not.toThrow();
    const facts = await verifyGpuEvidenceList(entries, {
      now: 1717200000,
      expectedNonce: gpuNonce,
      roots: { simulated: [Buffer.from(root.rootCertPem)] },
    });
    expect(facts.every((f) => f.signatureValid && f.chainValid && f.nonceMatches && f.simulated)).toBe(true);

    const code = { code: 'E_EVIDENCE_BINDING' };
    expect(() => verifyCompositeBinding(reportData, id, [entries[1]!, entries[0]!])).toThrow(
      expect.objectContaining(code),
    );
    expect(() =>
      verifyCompositeBinding(reportData, { ...id, nonce: new Uint8Array(32).fill(4) }, entries),
    ).toThrow(expect.objectContaining(code));
    // Report data that binds evidence signed for another nonce: the digest holds, the nonce does not.
    const stale = [await gpus[0]!.collect(new Uint8Array(32).fill(9))];
    const rd2 = computeReportData({ ...id, gpuEvidenceDigest: gpuEvidenceDigest(stale) });
    expect(() => verifyCompositeBinding(rd2, id, stale)).toThrow(/derived from the requester nonce/);
  });
});
