/**
 * The split cold path (decision 1380, `signatureThreads: 'worker'`) queues the quote's signature
 * check, then awaits the collateral worker's reply, and only then reads the quote's registers and
 * report data for the verdict (`finish`). The parsed quote is views into the caller's buffer, so a
 * host that reuses its buffer for the next quote while the call is in flight gets a pass whose
 * report data and measurements are the new bytes: never signed by the QE-attested key.
 * Promise: mutating inputs in place while a call is in flight never yields a pass for bytes that
 * were not checked (the verdict is that of the bytes given, as on every other path).
 */
import { describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../packages/attestation/test/dcap/testVectors.ts';
import { parseDcapQuote } from '../../packages/attestation/src/dcap/quote.ts';
import {
  clearDcapCaches,
  verifyDcapQuote,
  verifyDcapQuoteSync,
} from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

describe('attack: a quote changed in place while a split verification awaits the worker', () => {
  it('the verdict is for the bytes that were checked, not the bytes written meanwhile', async () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx]) {
      clearDcapCaches();
      const quote = vector(c.quote);
      const rd = parseDcapQuote(quote).body.report.reportData;
      const at = rd.byteOffset - quote.byteOffset;
      const signed = Buffer.from(quote.subarray(at, at + 64)).toString('hex');
      const p = verifyDcapQuote(quote, {
        collateral: vectorJson(c.collateral),
        now: c.now,
        signatureThreads: 'worker',
      });
      // The host writes the next quote's report data (its own key binding) into the same buffer.
      quote.fill(0x77, at, at + 64);
      const out = await p.then(
        (v) => ({ reportData: Buffer.from(v.reportData).toString('hex') }),
        (e: { code?: string }) => ({ code: e.code }),
      );
      // Either refused, or a pass for exactly the report data that was signed.
      if ('reportData' in out) expect(out.reportData, c.quote).toBe(signed);
    }
  }, 30_000);
});

describe('attack: the options changed in place while a split verification awaits the worker', () => {
  it('the time the call was given decides the verdict, not a time written meanwhile', async () => {
    for (const c of [VECTORS.sgx, VECTORS.tdx]) {
      // Far past every certificate's notAfter: refused on every path.
      const late = c.now + 40 * 365 * 86400;
      const sync = (() => {
        try {
          verifyDcapQuoteSync(vector(c.quote), { collateral: vectorJson(c.collateral), now: late });
          return 'ok';
        } catch (e) {
          return (e as { code?: string }).code;
        }
      })();
      expect(sync).not.toBe('ok');
      for (const swapped of [c.now, Number.NaN]) {
        clearDcapCaches();
        const opts = { collateral: vectorJson(c.collateral), now: late, signatureThreads: 'worker' as const };
        const p = verifyDcapQuote(vector(c.quote), opts);
        // A caller reusing its options object for the next call.
        opts.now = swapped;
        const out = await p.then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
        expect(out, `${c.quote} now -> ${swapped}`).toBe(sync);
      }
    }
  }, 30_000);
});
