import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { parseDcapQuote } from './quote.ts';
import { clearDcapCaches, verifyDcapQuote, verifyDcapQuoteSync } from './verifyDcapQuote.ts';

/**
 * verifyDcapQuote runs its ECDSA checks concurrently on the thread pool (decision 1270) and must
 * still report the error the synchronous, one-check-at-a-time order reports. These tests break
 * each of the nine signatures of a real SGX quote and its collateral (ten places: the PCK CA
 * certificate is served twice), alone, in pairs, and next to a later synchronous error, and
 * compare both entry points with the expected code and message.
 */

type Collateral = Record<string, unknown>;
interface Case {
  quote: Uint8Array;
  collateral: Collateral;
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/** Flip the last byte (the end of the ECDSA signature) of the n-th certificate of PEM text. */
function flipPemCertificate(text: string, n: number): string {
  let at = -1;
  for (let i = 0; i <= n; i++) at = text.indexOf(BEGIN, at + 1);
  if (at < 0) throw new Error('no such certificate');
  const start = at + BEGIN.length;
  const end = text.indexOf(END, start);
  const body = text.slice(start, end);
  const der = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  der[der.length - 1]! ^= 0x01;
  // Same length, same line breaks: put the new base64 characters where the old ones were.
  const b64 = der.toString('base64');
  let k = 0;
  const next = body.replace(/[A-Za-z0-9+/=]/g, () => b64[k++]!);
  return text.slice(0, start) + next + text.slice(end);
}

function flipHexByte(hex: string, byteIndex: number): string {
  const b = Buffer.from(hex, 'hex');
  const i = byteIndex < 0 ? b.length + byteIndex : byteIndex;
  b[i]! ^= 0x01;
  return b.toString('hex');
}

const base = (): Case => ({
  quote: vector(VECTORS.sgx.quote),
  collateral: vectorJson(VECTORS.sgx.collateral),
});
const q0 = parseDcapQuote(vector(VECTORS.sgx.quote));
const sigStart = 48 + 384 + 4;
const certDataOffset = q0.certification.certData.byteOffset - q0.raw.byteOffset;
const authDataOffset = sigStart + 64 + 64 + 384 + 64 + 2;

/** Rewrite the PCK chain PEM inside the quote (same length, so no size field changes). */
function editQuoteChain(c: Case, edit: (pem: string) => string): void {
  const cd = c.quote.subarray(certDataOffset, certDataOffset + q0.certification.certData.length);
  const next = Buffer.from(edit(Buffer.from(cd).toString('latin1')), 'latin1');
  expect(next.length).toBe(cd.length);
  cd.set(next);
}

/** Each signature, in the order the synchronous verifier checks it, with the error it gives. */
const SIGNATURES: { name: string; code: string; message: string; breakIt: (c: Case) => void }[] = [
  {
    name: 'TCB signing certificate (by the root)',
    code: 'E_EVIDENCE_CHAIN',
    message: 'TCB info issuer chain[0]: certificate signature is invalid',
    breakIt: (c) => {
      c.collateral.tcb_info_issuer_chain = flipPemCertificate(
        c.collateral.tcb_info_issuer_chain as string,
        0,
      );
    },
  },
  {
    name: 'TCB info',
    code: 'E_EVIDENCE_COLLATERAL',
    message: 'TCB info signature is invalid',
    breakIt: (c) => {
      c.collateral.tcb_info_signature = flipHexByte(c.collateral.tcb_info_signature as string, 5);
    },
  },
  {
    name: 'QE identity',
    code: 'E_EVIDENCE_COLLATERAL',
    message: 'QE identity signature is invalid',
    breakIt: (c) => {
      c.collateral.qe_identity_signature = flipHexByte(c.collateral.qe_identity_signature as string, 5);
    },
  },
  {
    name: 'root CA CRL',
    code: 'E_EVIDENCE_CHAIN',
    message: 'root CA CRL signature is invalid',
    breakIt: (c) => {
      c.collateral.root_ca_crl = flipHexByte(c.collateral.root_ca_crl as string, -1);
    },
  },
  {
    name: 'PCK CA certificate in the PCK CRL issuer chain (by the root)',
    code: 'E_EVIDENCE_CHAIN',
    message: 'PCK CRL issuer chain[0]: certificate signature is invalid',
    breakIt: (c) => {
      c.collateral.pck_crl_issuer_chain = flipPemCertificate(c.collateral.pck_crl_issuer_chain as string, 0);
    },
  },
  {
    name: 'PCK CRL',
    code: 'E_EVIDENCE_CHAIN',
    message: 'PCK CRL signature is invalid',
    breakIt: (c) => {
      c.collateral.pck_crl = flipHexByte(c.collateral.pck_crl as string, -1);
    },
  },
  {
    name: 'PCK certificate (by the PCK CA)',
    code: 'E_EVIDENCE_CHAIN',
    message: 'PCK chain[0]: certificate signature is invalid',
    breakIt: (c) => editQuoteChain(c, (pem) => flipPemCertificate(pem, 0)),
  },
  {
    name: 'PCK CA certificate in the quote (by the root)',
    code: 'E_EVIDENCE_CHAIN',
    message: 'PCK chain[1]: certificate signature is invalid',
    breakIt: (c) => editQuoteChain(c, (pem) => flipPemCertificate(pem, 1)),
  },
  {
    name: 'QE report (by the PCK key)',
    code: 'E_EVIDENCE_SIGNATURE',
    message: 'QE report signature is invalid',
    breakIt: (c) => {
      c.quote[sigStart + 64 + 64 + 384 + 7]! ^= 0x01;
    },
  },
  {
    name: 'quote (by the attestation key)',
    code: 'E_EVIDENCE_SIGNATURE',
    message: 'quote signature is invalid',
    breakIt: (c) => {
      c.quote[sigStart + 7]! ^= 0x01;
    },
  },
];

type Outcome = { code: string; message: string } | { ok: string };

function outcomeOf(e: unknown): Outcome {
  if (!isFirnError(e)) throw e;
  return { code: e.code, message: e.message };
}
function runSync(c: Case): Outcome {
  clearDcapCaches();
  try {
    return { ok: verifyDcapQuoteSync(c.quote, { collateral: c.collateral, now: VECTORS.sgx.now }).tcbStatus };
  } catch (e) {
    return outcomeOf(e);
  }
}
/** verifyDcapQuote with its checks on the thread pool (the deferred path), unless told otherwise. */
async function runAsync(
  c: Case,
  clear = true,
  signatureThreads: 'pool' | 'thread' | 'caller' | 'auto' = 'pool',
): Promise<Outcome> {
  if (clear) clearDcapCaches();
  try {
    const opts = { collateral: c.collateral, now: VECTORS.sgx.now, signatureThreads };
    return { ok: (await verifyDcapQuote(c.quote, opts)).tcbStatus };
  } catch (e) {
    return outcomeOf(e);
  }
}

describe('signature failures are reported in the synchronous order by both entry points', () => {
  it('the unbroken vector passes both', async () => {
    expect(runSync(base())).toEqual({ ok: 'ConfigurationAndSWHardeningNeeded' });
    expect(await runAsync(base())).toEqual({ ok: 'ConfigurationAndSWHardeningNeeded' });
  });

  it('each signature broken alone gives its own code and message', async () => {
    for (const s of SIGNATURES) {
      const c = base();
      s.breakIt(c);
      const want = { code: s.code, message: s.message };
      expect(runSync(c), s.name).toEqual(want);
      expect(await runAsync(c), s.name).toEqual(want);
      expect(await runAsync(c, true, 'caller'), s.name).toEqual(want);
      expect(await runAsync(c, true, 'auto'), s.name).toEqual(want);
      expect(await runAsync(c, true, 'thread'), `${s.name} (thread)`).toEqual(want);
    }
  });

  it('with two signatures broken, the one checked first in the synchronous order is reported', async () => {
    for (let i = 0; i < SIGNATURES.length; i++)
      for (let j = i + 1; j < SIGNATURES.length; j++) {
        const c = base();
        SIGNATURES[i]!.breakIt(c);
        SIGNATURES[j]!.breakIt(c);
        const want = { code: SIGNATURES[i]!.code, message: SIGNATURES[i]!.message };
        const label = `${SIGNATURES[i]!.name} + ${SIGNATURES[j]!.name}`;
        expect(runSync(c), label).toEqual(want);
        expect(await runAsync(c), label).toEqual(want);
        expect(await runAsync(c, true, 'thread'), `${label} (thread)`).toEqual(want);
      }
  });

  it('a signature still in flight beats a later synchronous error (the QE report binding)', async () => {
    // Flipping QE authentication data breaks the binding, a check made without the pool.
    const binding = { code: 'E_EVIDENCE_SIGNATURE', message: 'QE report does not bind the attestation key' };
    const c0 = base();
    c0.quote[authDataOffset]! ^= 0x01;
    expect(runSync(c0)).toEqual(binding);
    expect(await runAsync(c0)).toEqual(binding);
    for (const s of SIGNATURES.slice(0, -1)) {
      const c = base();
      c.quote[authDataOffset]! ^= 0x01;
      s.breakIt(c);
      const want = { code: s.code, message: s.message };
      expect(runSync(c), s.name).toEqual(want);
      expect(await runAsync(c), s.name).toEqual(want);
    }
  });

  it('a failed check is not cached: the same broken input fails again, warm or cold', async () => {
    for (const s of SIGNATURES) {
      const c = base();
      s.breakIt(c);
      const want = { code: s.code, message: s.message };
      clearDcapCaches();
      expect(await runAsync(c, false), s.name).toEqual(want);
      expect(await runAsync(c, false), s.name).toEqual(want);
      expect(runSync(c), s.name).toEqual(want);
      clearDcapCaches();
      expect(await runAsync(c, false, 'caller'), `${s.name} (caller)`).toEqual(want);
      expect(await runAsync(c, false, 'auto'), `${s.name} (auto)`).toEqual(want);
      clearDcapCaches();
      expect(await runAsync(c, false, 'thread'), `${s.name} (thread)`).toEqual(want);
      expect(await runAsync(c, false, 'thread'), `${s.name} (thread, warm)`).toEqual(want);
    }
  });

  it('concurrent verifications sharing checks in flight each get their own verdict', async () => {
    const broken = SIGNATURES.map((s) => {
      const c = base();
      s.breakIt(c);
      return { c, want: { code: s.code, message: s.message } };
    });
    for (const [order, mode] of [
      ['good first', 'pool'],
      ['broken first', 'pool'],
      ['good first', 'thread'],
      ['broken first', 'thread'],
    ] as const) {
      clearDcapCaches();
      const runs = broken.flatMap(({ c, want }) => {
        const pair = [
          runAsync(base(), false, mode),
          runAsync(c, false, mode).then((o) => ({ o, want })),
        ] as const;
        return order === 'good first' ? [pair[0], pair[1]] : [pair[1], pair[0]];
      });
      const results = await Promise.all(runs);
      for (const r of results) {
        if ('want' in r) expect(r.o).toEqual(r.want);
        else expect(r).toEqual({ ok: 'ConfigurationAndSWHardeningNeeded' });
      }
    }
  });
});
