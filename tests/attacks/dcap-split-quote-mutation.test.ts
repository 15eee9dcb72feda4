/**
 * verifyDcapQuote on the thread pool (`signatureThreads: 'pool'`) queues the quote's signature
 * check and returns a promise that settles after every queued check. The parsed quote is views
 * into the caller's buffer, so a host that reuses its buffer (or options object) for the next
 * quote while the call is in flight must not get a pass for bytes that were never checked. (The
 * split path this first covered, decision 1380, was removed by decision 1450; the attack applies
 * to the pool path.)
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

describe('attack: a quote changed in place while a verification awaits its signatures', () => {
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
        signatureThreads: 'pool',
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

describe('attack: the options changed in place while a verification awaits its signatures', () => {
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
        const opts = { collateral: vectorJson(c.collateral), now: late, signatureThreads: 'pool' as const };
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
