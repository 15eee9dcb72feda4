import { readFileSync } from 'node:fs';
import { bytesToHex, measurementDigest, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { dcapSelfIdentity } from './quoteIdentity.ts';
import { verifyDcapQuote } from './verifyDcapQuote.ts';

const dir = sharedPath('vectors', 'attestation', 'phala-dcap-qvl');

describe('dcapSelfIdentity', () => {
  // The enclave names itself from its own quote; verifiers must derive the same measurement and PPID.
  for (const [quote, collateral, at] of [
    ['sgx_quote', 'sgx_quote_collateral.json', 1752919277],
    ['tdx_quote', 'tdx_quote_collateral.json', 1752919234],
  ] as const) {
    it(`agrees with the verifier on ${quote}`, async () => {
      const bytes = readFileSync(`${dir}/${quote}`);
      const self = dcapSelfIdentity(bytes);
      const facts = await verifyDcapQuote(bytes, {
        collateral: JSON.parse(readFileSync(`${dir}/${collateral}`, 'utf8')),
        now: at,
      });
      expect(bytesToHex(measurementDigest(self.teeType, self.registers))).toBe(bytesToHex(facts.measurement));
      expect(bytesToHex(self.platformId)).toBe(bytesToHex(facts.platformId));
      expect(self.teeType).toBe(facts.teeType);
    });
  }
});
