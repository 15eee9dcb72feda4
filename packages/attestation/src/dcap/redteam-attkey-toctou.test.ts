import 'reflect-metadata';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticSgx } from '../../test/dcap/syntheticDcap.ts';
import { clearDcapCaches, verifyDcapQuote, verifyDcapQuoteSync } from './verifyDcapQuote.ts';

/**
 * Red team: the quote carries an attestation key off the curve (X = Y with its last byte flipped),
 * bound by the QE report; the quote body is signed with Y's private key. Every synchronous check
 * sees X, so the verdict must be E_EVIDENCE_SIGNATURE 'attestation key is not a valid P-256 point'.
 * On the signature thread, the thread cannot import X and answers "4"; the calling thread then
 * re-imports the key from q.attestationKey -- a VIEW into the caller's quote buffer -- when the
 * answer arrives, i.e. after verifyDcapQuote has returned its promise. A caller (or anything
 * sharing the buffer) that rewrites those 64 bytes to Y before the answer arrives gets the quote
 * ACCEPTED, with a verdict computed from bytes whose binding check passed for X.
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

describe('red team: attestation key re-read from the caller buffer on the thread path', () => {
  // Observed: in 'thread' mode 68-82 of 100 calls resolve ACCEPTED (a verdict); 'auto' does the
  // same whenever it picks the signature thread. 'pool' and 'caller' import the key synchronously
  // from the bytes as given and always refuse.
  it('sync refuses the off-curve key', async () => {
    const s = await makeSyntheticSgx({ attestationKeyOffCurve: true });
    const roots = [new Uint8Array(Buffer.from(s.rootPem))];
    clearDcapCaches();
    expect(() => verifyDcapQuoteSync(s.quote, { collateral: s.collateral, now: s.now, roots })).toThrow(
      'attestation key is not a valid P-256 point',
    );
  });

  for (const mode of ['thread', 'auto'] as const) {
    it(`${mode}: rewriting the quote buffer after the call returns must not change the verdict`, async () => {
      const s = await makeSyntheticSgx({ attestationKeyOffCurve: true });
      const roots = [new Uint8Array(Buffer.from(s.rootPem))];
      const results: string[] = [];
      for (let i = 0; i < 50; i++) {
        clearDcapCaches();
        const quote = s.quote.slice();
        const p = verifyDcapQuote(quote, { collateral: s.collateral, now: s.now, roots, signatureThreads: mode });
        // The caller's buffer changes while the verification is in flight: the key back on the curve.
        quote[ATT_KEY_OFFSET + 63]! ^= 1;
        results.push(await outcome(p));
      }
      expect(new Set(results)).toEqual(new Set(['E_EVIDENCE_SIGNATURE: attestation key is not a valid P-256 point']));
    });
  }
});
