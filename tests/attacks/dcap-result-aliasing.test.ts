import { describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../packages/attestation/test/dcap/testVectors.ts';
import { verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

// One caller's verified result must not share bytes with the verifier's caches: a caller that
// scribbles on (or reuses) its result must not change what later verifications report.
describe('attack: a verified result shares bytes with the caches', () => {
  it("changing one result's platformId does not change a later result's", async () => {
    const c = VECTORS.sgx;
    const opts = () => ({ collateral: vectorJson(c.collateral), now: c.now });
    const first = await verifyDcapQuote(vector(c.quote), opts());
    const ppid = Buffer.from(first.platformId).toString('hex');
    first.platformId.fill(0);
    const second = await verifyDcapQuote(vector(c.quote), opts());
    expect(Buffer.from(second.platformId).toString('hex')).toBe(ppid);
  });
});
