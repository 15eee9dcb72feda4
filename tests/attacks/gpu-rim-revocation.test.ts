import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GpuEvidenceEntry } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { ocspRequestSerials } from '../../packages/attestation/src/nvidia/ocspClient.ts';
import { parseSpdmReport } from '../../packages/attestation/src/nvidia/parseSpdmReport.ts';
import { createRimStore, parseRim } from '../../packages/attestation/src/nvidia/verifyRim.ts';
import { verifyGpuEvidenceList } from '../../packages/attestation/src/nvidia/verifyGpuEvidence.ts';

// A RIM whose signing certificate NVIDIA has revoked (a withdrawn firmware's reference values) is
// served by a malicious RIM service or mirror. NVIDIA's verifiers check the revocation of the device
// certificates AND of the RIM signing chains by OCSP (shared vectors' nvidia-nvtrust/SOURCE.md);
// decision 0921 says revocation is checked. firn asks the responder about the device chain only,
// so a revoked RIM signer still yields a "match".
const DIR = fileURLToPath(
  new URL('../../packages/attestation/vectors/nvidia-attestation-sdk/', import.meta.url),
);
const text = (f: string) => readFileSync(`${DIR}${f}`, 'utf8');
const SWITCH_RIM = 'switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml';
const RIM_NOW = 1780272000; // inside the switch RIM signer's validity

describe('attack: a RIM signed by a revoked RIM certificate', () => {
  it('the RIM signing certificate is checked by OCSP like the device certificates', async () => {
    const entries = JSON.parse(text('switch_evidence_ls10.json')) as GpuEvidenceEntry[];
    const xml = text(`rims/${SWITCH_RIM}`);
    const rimLeafSerial = new X509Certificate(parseRim(xml).signerChain[0]!).serialNumber.toLowerCase();
    const asked: string[] = [];
    const responder = (async (_u: unknown, init?: RequestInit) => {
      asked.push(...ocspRequestSerials(init!.body as Uint8Array));
      return new Response(null, { status: 503 });
    }) as unknown as typeof fetch;
    const facts = await verifyGpuEvidenceList(entries, {
      now: RIM_NOW,
      expectedNonce: parseSpdmReport(Buffer.from(entries[0]!.evidence, 'base64')).requestNonce,
      rims: createRimStore([{ source: SWITCH_RIM, xml }]),
      ocsp: { url: 'http://127.0.0.1:1/ocsp', fetch: responder },
    });
    expect(facts[0]!.measurements).toBe('match');
    expect(asked.length).toBeGreaterThan(0); // the device chain was asked about
    expect(asked.map((s) => s.replace(/^0+/, ''))).toContain(rimLeafSerial.replace(/^0+/, ''));
  });
});
