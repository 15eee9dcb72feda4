import { describe, expect, it } from 'vitest';
import { makeSyntheticSgx, makeSyntheticTdx } from '../../test/dcap/syntheticDcap.ts';
import { VERIFY_MODES, verdictIn } from '../../test/dcap/modes.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { parseDcapQuote } from './quote.ts';
import { clearDcapCaches } from './verifyDcapQuote.ts';

/**
 * A QE report whose signature passed under a PCK certificate is not checked again for the next
 * quote of that platform (decision 1810). These attacks present, right after a genuine quote has
 * passed in the same mode, a quote whose QE report or its signature differs from the one that
 * passed in a single byte, and a QE report that passed under one PCK certificate under another:
 * each must fail with the QE report's own error in every signature mode, and the genuine quote
 * must still pass after them.
 */

const MODES = VERIFY_MODES;
const run = verdictIn;

/** Offsets of the QE report and its signature inside the quote's bytes. */
function qeReportAt(quote: Uint8Array): { report: number; signature: number } {
  const q = parseDcapQuote(quote);
  const at = (b: Uint8Array) => b.byteOffset - q.raw.byteOffset;
  return { report: at(q.certification.qeReport.raw), signature: at(q.certification.qeReportSignature) };
}

function flipped(quote: Uint8Array, at: number): Uint8Array {
  const out = quote.slice();
  out[at]! ^= 0x01;
  return out;
}

const BAD_QE_SIGNATURE = 'E_EVIDENCE_SIGNATURE: QE report signature is invalid';

describe('a QE report that passed is matched by its exact bytes and PCK certificate', () => {
  for (const name of ['sgx', 'tdx'] as const) {
    it(`${name}: a QE report or signature one byte off the one that passed still fails, in every mode`, async () => {
      const v = VECTORS[name];
      const quote = vector(v.quote);
      const opts = { collateral: vectorJson(v.collateral), now: v.now };
      const at = qeReportAt(quote);
      // Byte 100 of the report is in its reserved area (SGX report body offset 96-159): no other
      // check reads it, so only the signature can catch it.
      const attacks = [flipped(quote, at.signature + 63), flipped(quote, at.report + 100)];
      for (const mode of MODES) {
        clearDcapCaches();
        const genuine = await run(mode, quote, opts);
        expect(genuine, mode).toMatch(/^ok /);
        // Passed twice: the second is the cached one.
        expect(await run(mode, quote, opts), mode).toBe(genuine);
        for (const [i, bad] of attacks.entries())
          expect(await run(mode, bad, opts), `${mode} attack ${i}`).toBe(BAD_QE_SIGNATURE);
        expect(await run(mode, quote, opts), mode).toBe(genuine);
        // A failed check leaves nothing behind: the same attack fails again.
        for (const [i, bad] of attacks.entries())
          expect(await run(mode, bad, opts), `${mode} attack ${i} again`).toBe(BAD_QE_SIGNATURE);
      }
    });
  }

  for (const [name, make] of [
    ['sgx', makeSyntheticSgx],
    ['tdx', makeSyntheticTdx],
  ] as const) {
    it(`${name}: a QE report that passed under one PCK certificate fails under another platform's`, async () => {
      // Two platforms under one root would share the PCK CA; two synthetic platforms with their
      // own roots are verified each against its own root, so each has its own PCK certificate.
      const a = await make();
      const b = await make();
      const optsA = { collateral: a.collateral, now: a.now, roots: [new Uint8Array(Buffer.from(a.rootPem))] };
      const optsB = { collateral: b.collateral, now: b.now, roots: [new Uint8Array(Buffer.from(b.rootPem))] };
      const atA = qeReportAt(a.quote);
      const atB = qeReportAt(b.quote);
      expect(atA).toEqual(atB);
      // B's quote carrying A's QE report and A's signature over it (the same bytes that passed).
      const spliced = b.quote.slice();
      spliced.set(a.quote.subarray(atA.report, atA.report + 384), atB.report);
      spliced.set(a.quote.subarray(atA.signature, atA.signature + 64), atB.signature);
      for (const mode of MODES) {
        clearDcapCaches();
        expect(await run(mode, a.quote, optsA), mode).toMatch(/^ok /);
        expect(await run(mode, b.quote, optsB), mode).toMatch(/^ok /);
        expect(await run(mode, spliced, optsB), mode).toBe(BAD_QE_SIGNATURE);
      }
    });
  }
});
