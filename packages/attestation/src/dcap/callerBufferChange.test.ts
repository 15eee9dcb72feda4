import 'reflect-metadata';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticSgx } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { parseDcapQuote } from './quote.ts';
import { clearDcapCaches, verifyDcapQuote, verifyDcapQuoteSync } from './verifyDcapQuote.ts';

/**
 * A caller's quote buffer that changes while verifyDcapQuote is in flight (a pooled or reused
 * receive buffer) must not change its verdict. The attack: a quote whose attestation key X is off
 * the curve (Y with its last byte flipped), bound by the QE report, with the body signed by Y's
 * private key; the verdict is E_EVIDENCE_SIGNATURE 'attestation key is not a valid P-256 point'.
 * On the signature thread the thread cannot import X, and the calling thread imports it itself
 * once the thread answers, after the call has returned: it once read the key from the caller's
 * buffer then, and a caller that had turned X back into Y got the quote accepted. Every deferred
 * check now uses only bytes copied when it was queued (decision 1790).
 */
const ATT_KEY_OFFSET = 48 + 384 + 4 + 64; // SGX v3: header, report body, sig length, signature

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

describe('a quote buffer changed after the call returns', () => {
  // Before the fix, 68-82 of 100 calls in 'thread' mode were accepted, and 'auto' was whenever it
  // picked the signature thread.
  it('sync refuses the off-curve key', async () => {
    const s = await makeSyntheticSgx({ attestationKeyOffCurve: true });
    const roots = [new Uint8Array(Buffer.from(s.rootPem))];
    clearDcapCaches();
    expect(() => verifyDcapQuoteSync(s.quote, { collateral: s.collateral, now: s.now, roots })).toThrow(
      'attestation key is not a valid P-256 point',
    );
  });

  for (const mode of ['thread', 'auto', 'pool', 'caller'] as const) {
    it(`${mode}: rewriting the quote buffer after the call returns must not change the verdict`, async () => {
      const s = await makeSyntheticSgx({ attestationKeyOffCurve: true });
      const roots = [new Uint8Array(Buffer.from(s.rootPem))];
      const results: string[] = [];
      for (let i = 0; i < 50; i++) {
        clearDcapCaches();
        const quote = s.quote.slice();
        const p = verifyDcapQuote(quote, {
          collateral: s.collateral,
          now: s.now,
          roots,
          signatureThreads: mode,
        });
        // The caller's buffer changes while the verification is in flight: the key back on the curve.
        quote[ATT_KEY_OFFSET + 63]! ^= 1;
        results.push(await outcome(p));
      }
      expect(new Set(results)).toEqual(
        new Set(['E_EVIDENCE_SIGNATURE: attestation key is not a valid P-256 point']),
      );
    });
  }

  it("a parsed quote whose body was swapped for another quote's reports only what its own bytes say", async () => {
    const real = vector(VECTORS.sgx.quote);
    const opts = { collateral: vectorJson(VECTORS.sgx.collateral), now: VECTORS.sgx.now };
    const honest = await verifyDcapQuote(real, opts);
    const other = await makeSyntheticSgx();
    const forged = { ...parseDcapQuote(real), body: parseDcapQuote(other.quote).body };
    for (const mode of ['thread', 'caller'] as const) {
      clearDcapCaches();
      const f = await verifyDcapQuote(forged, { ...opts, signatureThreads: mode });
      expect(Buffer.from(f.measurement).toString('hex')).toBe(
        Buffer.from(honest.measurement).toString('hex'),
      );
    }
  });

  it('a quote that is not bytes is refused with E_INVALID_INPUT, not a TypeError', async () => {
    const real = vector(VECTORS.sgx.quote);
    const opts = { collateral: vectorJson(VECTORS.sgx.collateral), now: VECTORS.sgx.now };
    for (const bad of [real.buffer, 'AAAA', null, {}])
      await expect(verifyDcapQuote(bad as unknown as Uint8Array, opts)).rejects.toMatchObject({
        code: 'E_INVALID_INPUT',
      });
  });
});
