import { randomBytes } from 'node:crypto';
import { bytesToHex, computeReportData, hexToBytes } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import type { EvidenceProvider } from './types.ts';

// A provider shaped like Gramine's /dev/attestation: one shared "user_report_data" slot written
// first, then the quote read over whatever the slot holds at that moment. Interleaved callers
// would get a quote over another caller's report data.
function sharedSlotProvider() {
  let slot: Uint8Array = new Uint8Array(64);
  let inFlight = 0;
  let maxInFlight = 0;
  const provider: EvidenceProvider = {
    teeType: 'simulated',
    async quote(reportData) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      slot = reportData;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
      const quote = new Uint8Array(slot);
      inFlight--;
      return { quote };
    },
    async sealingKey() {
      return new Uint8Array(32).fill(1);
    },
  };
  return { provider, maxInFlight: () => maxInFlight };
}

describe('evidence generation in series', () => {
  it('concurrent attestations each get a quote over their own report data (quote() never interleaves)', async () => {
    const p = sharedSlotProvider();
    const program = createEnclaveProgram({
      provider: p.provider,
      measurementRegisters: [new Uint8Array(32).fill(2)],
      platformId: new Uint8Array(32).fill(3),
    });
    await program.handle('init', { sealedKeys: null, sealedState: null });
    const nonces = Array.from({ length: 12 }, () => randomBytes(32));
    const bundles = (await Promise.all(
      nonces.map((n) => program.handle('attest', { nonce: bytesToHex(n) })),
    )) as { quote: string; enclaveAddress: string; kemPublicKey: string }[];
    expect(p.maxInFlight()).toBe(1);
    bundles.forEach((b, i) => {
      const expected = computeReportData({
        enclaveAddress: hexToBytes(b.enclaveAddress),
        kemPublicKey: hexToBytes(b.kemPublicKey),
        nonce: nonces[i]!,
      });
      expect(b.quote).toBe(bytesToHex(expected));
    });
  });
});
