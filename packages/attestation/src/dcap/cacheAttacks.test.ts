import 'reflect-metadata';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { makeSyntheticSgx, makeSyntheticTdx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VERIFY_MODES, verdictIn } from '../../test/dcap/modes.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { parseDcapQuote } from './quote.ts';
import { hexBytes } from './collateralJson.ts';
import {
  clearDcapCaches,
  type VerifyDcapOptions,
  verifyDcapQuote,
  verifyDcapQuoteSync,
} from './verifyDcapQuote.ts';

/**
 * Attacks on the verifier's cross-call caches (decisions 1340, 1790, 1810): each first lets a
 * genuine verification fill the caches, then presents altered evidence (or alters what the earlier
 * call was given, while it is in flight or after it passed), and asserts the verdict a fresh
 * process (every cache cleared) gives. The first group failed before each call parsed its own
 * copy of the quote: a QE report written into the caller's buffer while a deferred call settled
 * was remembered as passed, and a quote bound to an attacker's attestation key was then accepted
 * in every mode, on the real SGX and TDX vectors under the pinned Intel root.
 */

const MODES = VERIFY_MODES;
const ASYNC_MODES = ['pool', 'thread', 'auto', 'caller'] as const;

function describeError(e: unknown): string {
  if (!isFirnError(e)) throw e;
  return `${e.code}: ${e.message}`;
}

const run = verdictIn;

async function settled(p: Promise<{ tcbStatus: string; measurement: Uint8Array }>): Promise<string> {
  try {
    const v = await p;
    return `ok ${v.tcbStatus} ${Buffer.from(v.measurement).toString('hex')}`;
  } catch (e) {
    return describeError(e);
  }
}

/** The outcome in a fresh process: every cache cleared, checked on the calling thread. */
function fresh(quote: Uint8Array, opts: VerifyDcapOptions): string {
  clearDcapCaches();
  try {
    const v = verifyDcapQuoteSync(quote, opts);
    return `ok ${v.tcbStatus} ${Buffer.from(v.measurement).toString('hex')}`;
  } catch (e) {
    return describeError(e);
  } finally {
    clearDcapCaches();
  }
}

const roots = (s: SyntheticDcap) => [new Uint8Array(Buffer.from(s.rootPem))];

/** Offsets (in the quote's bytes) of the parts an attacker rewrites. */
function layout(quote: Uint8Array) {
  const q = parseDcapQuote(quote);
  const at = (b: Uint8Array) => b.byteOffset - q.raw.byteOffset;
  return {
    q,
    report: at(q.certification.qeReport.raw),
    qeSignature: at(q.certification.qeReportSignature),
    attKey: at(q.attestationKey),
    signature: at(q.signature),
    signedLength: q.signedBytes.length,
    certData: at(q.certification.certData),
    certDataLength: q.certification.certData.length,
  };
}

/**
 * A forged quote on `genuine`'s platform: its body measurement changed, a fresh attestation key
 * of the attacker's bound by a QE report the attacker wrote (reportData = sha256(key || auth
 * data)), the body signed with that key, and the QE report signature left as it was (now wrong:
 * only the PCK's private key could sign the new report). Returns the quote and its QE report.
 */
function forge(genuine: Uint8Array): { quote: Uint8Array; report: Uint8Array } {
  const l = layout(genuine);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const out = genuine.slice();
  // The body's first measurement register (SGX MRENCLAVE at body+64, TDX MRTD at body+136).
  const body = l.q.header.version === 5 ? 48 + 6 : 48;
  const mr = l.q.body.kind === 'sgx' ? body + 64 : body + 136;
  out.fill(0xee, mr, mr + 32);
  out.set(point, l.attKey);
  const report = l.q.certification.qeReport.raw.slice();
  report.set(createHash('sha256').update(point).update(l.q.certification.qeAuthData).digest(), 320);
  report.fill(0, 352, 384);
  out.set(report, l.report);
  const sig = sign('sha256', out.subarray(0, l.signedLength), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  out.set(sig, l.signature);
  return { quote: out, report };
}

/**
 * The quote with one base64 character of the PCK leaf's signature (near the end of its PEM block)
 * changed: the same length, the same first bytes, a certificate whose TBS and key are the leaf's
 * but whose signature by the PCK CA no longer verifies.
 */
function leafSignatureAltered(quote: Uint8Array): Uint8Array {
  const l = layout(quote);
  const text = Buffer.from(quote.subarray(l.certData, l.certData + l.certDataLength)).toString('latin1');
  const end = text.indexOf('-----END CERTIFICATE-----');
  // Skip the line break and any '=' padding, then step a few characters into the signature's s.
  let i = end - 1;
  while (text[i] === '\n' || text[i] === '\r' || text[i] === '=') i--;
  i -= 6;
  const c = text[i]!;
  const replacement = c === 'A' ? 'B' : 'A';
  const out = quote.slice();
  out[l.certData + i] = replacement.charCodeAt(0);
  return out;
}

describe('attack: the QE report cache and a caller buffer that changes while a call is in flight', () => {
  // The attack: a genuine quote is verified (deferred mode); while that call is in flight the
  // caller's buffer holding it is rewritten with a QE report the attacker wrote (binding the
  // attacker's own attestation key). If the "passed" record of the QE report were copied from the
  // caller's buffer after the checks settled, instead of from the bytes that were checked, that
  // forged report would be recorded as signed by the platform's PCK, and any quote the attacker
  // signs with that key would be accepted with measurements of their choosing.
  const cases = [
    [
      'real SGX vector (pinned Intel root)',
      async () => {
        const v = VECTORS.sgx;
        return { quote: vector(v.quote), opts: { collateral: vectorJson(v.collateral), now: v.now } };
      },
    ],
    [
      'real TDX vector (pinned Intel root)',
      async () => {
        const v = VECTORS.tdx;
        return { quote: vector(v.quote), opts: { collateral: vectorJson(v.collateral), now: v.now } };
      },
    ],
    [
      'synthetic SGX',
      async () => {
        const s = await makeSyntheticSgx();
        return { quote: s.quote, opts: { collateral: s.collateral, now: s.now, roots: roots(s) } };
      },
    ],
  ] as const;

  for (const [name, make] of cases) {
    it(`${name}: a QE report written into the caller's buffer after the call returned is not remembered as passed`, async () => {
      const { quote, opts } = await make();
      const forged = forge(quote);
      const expected = fresh(forged.quote, opts);
      expect(expected).toBe('E_EVIDENCE_SIGNATURE: QE report signature is invalid');
      const at = layout(quote).report;
      const got: Record<string, string> = {};
      const want: Record<string, string> = {};
      for (const mode of ['pool', 'thread', 'auto'] as const) {
        clearDcapCaches();
        const buf = quote.slice();
        const p = verifyDcapQuote(buf, { ...opts, signatureThreads: mode });
        // The caller reuses its receive buffer while the verification is in flight.
        buf.set(forged.report, at);
        expect(await settled(p), `${mode}: the genuine quote`).toMatch(/^ok /);
        for (const m of MODES) {
          got[`${mode} then ${m}`] = await run(m, forged.quote, opts);
          want[`${mode} then ${m}`] = expected;
        }
      }
      // The forged quote (attacker's key, attacker's MRENCLAVE/MRTD) must fail in every combination.
      expect(got).toEqual(want);
    });
  }

  it('a QE report signature rewritten in the caller buffer in flight is not remembered either', async () => {
    const v = VECTORS.sgx;
    const quote = vector(v.quote);
    const opts = { collateral: vectorJson(v.collateral), now: v.now };
    const l = layout(quote);
    const badSig = quote.slice();
    badSig[l.qeSignature + 63]! ^= 1;
    const expected = fresh(badSig, opts);
    expect(expected).toBe('E_EVIDENCE_SIGNATURE: QE report signature is invalid');
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const mode of ['pool', 'thread', 'auto'] as const) {
      clearDcapCaches();
      const buf = quote.slice();
      const p = verifyDcapQuote(buf, { ...opts, signatureThreads: mode });
      buf[l.qeSignature + 63]! ^= 1;
      expect(await settled(p)).toMatch(/^ok /);
      got[mode] = await run('caller', badSig, opts);
      want[mode] = expected;
    }
    expect(got).toEqual(want);
  });

  it('PCK chain bytes rewritten in the caller buffer in flight are not remembered as checked', async () => {
    const v = VECTORS.sgx;
    const quote = vector(v.quote);
    const opts = { collateral: vectorJson(v.collateral), now: v.now };
    const bad = leafSignatureAltered(quote);
    const expected = fresh(bad, opts);
    expect(expected).toBe('E_EVIDENCE_CHAIN: PCK chain[0]: certificate signature is invalid');
    for (const mode of ['pool', 'thread'] as const) {
      clearDcapCaches();
      const buf = quote.slice();
      const p = verifyDcapQuote(buf, { ...opts, signatureThreads: mode });
      buf.set(bad);
      expect(await settled(p)).toMatch(/^ok /);
      for (const m of MODES) expect(await run(m, bad, opts), `${mode} then ${m}`).toBe(expected);
    }
  });
});

describe('attack: cached certificate checks are keyed by the exact certificate', () => {
  it('a PCK leaf with the same TBS and key but an altered signature is checked in full after the genuine one', async () => {
    for (const name of ['sgx', 'tdx'] as const) {
      const v = VECTORS[name];
      const quote = vector(v.quote);
      const opts = { collateral: vectorJson(v.collateral), now: v.now };
      const bad = leafSignatureAltered(quote);
      const expected = fresh(bad, opts);
      expect(expected).toBe('E_EVIDENCE_CHAIN: PCK chain[0]: certificate signature is invalid');
      for (const mode of MODES) {
        clearDcapCaches();
        expect(await run(mode, quote, opts), mode).toMatch(/^ok /);
        expect(await run(mode, bad, opts), `${name} ${mode}`).toBe(expected);
        // Racing: the genuine and the altered chain in flight together.
        if (mode !== 'sync') {
          clearDcapCaches();
          const [g, b] = await Promise.all([run(mode, quote, opts), run(mode, bad, opts)]);
          expect(g, mode).toMatch(/^ok /);
          expect(b, `${name} ${mode} racing`).toBe(expected);
          expect(await run(mode, bad, opts), `${name} ${mode} after the race`).toBe(expected);
        }
      }
    }
  });

  it('a check in flight on the signature thread is not taken as passed by a synchronous call', async () => {
    const v = VECTORS.sgx;
    const quote = vector(v.quote);
    const opts = { collateral: vectorJson(v.collateral), now: v.now };
    const bad = leafSignatureAltered(quote);
    const expected = fresh(bad, opts);
    for (const first of ['thread', 'pool'] as const) {
      clearDcapCaches();
      const p = verifyDcapQuote(bad, { ...opts, signatureThreads: first });
      // While the altered chain's checks are in flight, the same evidence synchronously.
      expect(await run('sync', bad, opts), first).toBe(expected);
      expect(await settled(p), first).toBe(expected);
      expect(await run('sync', bad, opts), first).toBe(expected);
    }
  });
});

describe('attack: prepared collateral', () => {
  it('a collateral object mutated in place after it passed (strings) is checked again', async () => {
    const s = await makeSyntheticTdx();
    const base = { collateral: s.collateral, now: s.now, roots: roots(s) };
    const tampered = JSON.parse(s.collateral.tcb_info as string) as { tcbLevels: { tcbStatus: string }[] };
    tampered.tcbLevels[0]!.tcbStatus = 'Revoked';
    const tamperedText = JSON.stringify(tampered);
    const expected = fresh(s.quote, { ...base, collateral: { ...s.collateral, tcb_info: tamperedText } });
    expect(expected).toBe('E_EVIDENCE_COLLATERAL: TCB info signature is invalid');
    for (const mode of MODES) {
      clearDcapCaches();
      const obj: Record<string, unknown> = { ...s.collateral };
      const opts = { ...base, collateral: obj };
      expect(await run(mode, s.quote, opts), mode).toMatch(/^ok /);
      expect(await run(mode, s.quote, opts), mode).toMatch(/^ok /);
      obj.tcb_info = tamperedText;
      expect(await run(mode, s.quote, opts), mode).toBe(expected);
      // A camelCase field beside the snake_case one wins in toQuoteCollateralV3.
      obj.tcb_info = s.collateral.tcb_info;
      expect(await run(mode, s.quote, opts), mode).toMatch(/^ok /);
      obj.tcbInfo = tamperedText;
      expect(await run(mode, s.quote, opts), `${mode} camelCase`).toBe(expected);
    }
  });

  it('collateral bytes mutated in place after they passed, or while the call is in flight, are checked again', async () => {
    const s = await makeSyntheticSgx();
    const c = s.collateral as Record<string, string>;
    const asBytes = () => ({
      pckCrlIssuerChain: c.pck_crl_issuer_chain!,
      rootCaCrl: hexBytes(c.root_ca_crl!)!,
      pckCrl: hexBytes(c.pck_crl!)!,
      tcbInfoIssuerChain: c.tcb_info_issuer_chain!,
      tcbInfo: c.tcb_info!,
      tcbInfoSignature: hexBytes(c.tcb_info_signature!)!,
      qeIdentityIssuerChain: c.qe_identity_issuer_chain!,
      qeIdentity: c.qe_identity!,
      qeIdentitySignature: hexBytes(c.qe_identity_signature!)!,
    });
    for (const field of ['tcbInfoSignature', 'qeIdentitySignature', 'pckCrl', 'rootCaCrl'] as const) {
      const bad = asBytes();
      const b = bad[field];
      b[b.length - 3]! ^= 1;
      const expected = fresh(s.quote, { collateral: bad, now: s.now, roots: roots(s) });
      expect(expected, field).toMatch(/^E_EVIDENCE_(COLLATERAL|CHAIN|MALFORMED)/);
      for (const mode of MODES) {
        // After the call.
        clearDcapCaches();
        const obj = asBytes();
        const opts = { collateral: obj, now: s.now, roots: roots(s) };
        expect(await run(mode, s.quote, opts), mode).toMatch(/^ok /);
        obj[field][obj[field].length - 3]! ^= 1;
        expect(await run(mode, s.quote, opts), `${field} ${mode} after`).toBe(expected);
        if (mode === 'sync') continue;
        // While the call is in flight.
        clearDcapCaches();
        const live = asBytes();
        const lopts = { collateral: live, now: s.now, roots: roots(s), signatureThreads: mode };
        const p = verifyDcapQuote(s.quote, lopts);
        live[field][live[field].length - 3]! ^= 1;
        expect(await settled(p), `${field} ${mode} in flight`).toMatch(/^ok /);
        expect(await run(mode, s.quote, lopts), `${field} ${mode} after in flight`).toBe(expected);
        expect(await run('sync', s.quote, lopts), `${field} ${mode} then sync`).toBe(expected);
      }
    }
  });

  it('collateral checked under one root is not taken as checked under another (roots and held intermediates)', async () => {
    const a = await makeSyntheticSgx();
    const b = await makeSyntheticSgx();
    const optsA = { collateral: a.collateral, now: a.now, roots: roots(a) };
    const underB = { collateral: a.collateral, now: a.now, roots: roots(b) };
    const heldB = { ...underB, intermediates: b.intermediatePems.map((p) => new Uint8Array(Buffer.from(p))) };
    const expected = fresh(a.quote, underB);
    expect(expected).toMatch(/^E_EVIDENCE_CHAIN/);
    expect(fresh(a.quote, heldB)).toBe(expected);
    for (const mode of MODES) {
      clearDcapCaches();
      expect(await run(mode, a.quote, optsA), mode).toMatch(/^ok /);
      expect(
        await run(mode, a.quote, {
          ...optsA,
          intermediates: a.intermediatePems.map((p) => new Uint8Array(Buffer.from(p))),
        }),
      ).toMatch(/^ok /);
      expect(await run(mode, a.quote, underB), mode).toBe(expected);
      expect(await run(mode, a.quote, heldB), `${mode} held`).toBe(expected);
      // Both roots trusted, then only B.
      expect(await run(mode, a.quote, { ...optsA, roots: [...roots(b), ...roots(a)] })).toMatch(/^ok /);
      expect(await run(mode, a.quote, underB), `${mode} after both`).toBe(expected);
    }
  });

  it('time-dependent checks are made on every call, whatever is cached', async () => {
    const s = await makeSyntheticSgx({ revokePck: true });
    const older = { ...s.collateral, pck_crl: s.olderPckCrl! };
    const opts = { collateral: older, now: s.now, roots: roots(s) };
    const later = { ...opts, now: Date.parse('2030-06-01T00:00:00Z') / 1000 };
    const earlier = { ...opts, now: Date.parse('2023-06-01T00:00:00Z') / 1000 };
    const revoking = { ...opts, collateral: s.collateral };
    const expLater = fresh(s.quote, later);
    const expEarlier = fresh(s.quote, earlier);
    const expRevoked = fresh(s.quote, revoking);
    expect(expLater).toMatch(/^E_EVIDENCE_EXPIRED/);
    expect(expEarlier).toMatch(/^E_EVIDENCE_EXPIRED/);
    expect(expRevoked).toBe('E_EVIDENCE_REVOKED: PCK certificate is revoked');
    for (const mode of MODES) {
      clearDcapCaches();
      expect(await run(mode, s.quote, opts), mode).toMatch(/^ok /);
      expect(await run(mode, s.quote, later), mode).toBe(expLater);
      expect(await run(mode, s.quote, earlier), mode).toBe(expEarlier);
      expect(await run(mode, s.quote, revoking), mode).toBe(expRevoked);
    }
  });
});

describe('attack: concurrent calls racing a failing and a passing check', () => {
  it('a forged collateral signature and the genuine one in flight together', async () => {
    const s = await makeSyntheticTdx();
    const sig = Buffer.from(s.collateral.qe_identity_signature as string, 'hex');
    sig[9]! ^= 1;
    const bad = { ...s.collateral, qe_identity_signature: sig.toString('hex') };
    const good = { collateral: s.collateral, now: s.now, roots: roots(s) };
    const badOpts = { ...good, collateral: bad };
    const expected = fresh(s.quote, badOpts);
    expect(expected).toBe('E_EVIDENCE_COLLATERAL: QE identity signature is invalid');
    for (const mode of ASYNC_MODES) {
      clearDcapCaches();
      const outs = await Promise.all([
        run(mode, s.quote, badOpts),
        run(mode, s.quote, good),
        run(mode, s.quote, badOpts),
        run('sync', s.quote, badOpts),
      ]);
      expect(outs[0], mode).toBe(expected);
      expect(outs[1], mode).toMatch(/^ok /);
      expect(outs[2], mode).toBe(expected);
      expect(outs[3], mode).toBe(expected);
      for (const m of MODES) expect(await run(m, s.quote, badOpts), `${mode} then ${m}`).toBe(expected);
    }
  });

  it("a QE report that passed under one platform's PCK certificate, mixed across modes and concurrent calls", async () => {
    const a = await makeSyntheticSgx();
    const b = await makeSyntheticSgx();
    const optsA = { collateral: a.collateral, now: a.now, roots: roots(a) };
    const optsB = { collateral: b.collateral, now: b.now, roots: roots(b) };
    const la = layout(a.quote);
    const lb = layout(b.quote);
    const spliced = b.quote.slice();
    spliced.set(a.quote.subarray(la.report, la.report + 384), lb.report);
    spliced.set(a.quote.subarray(la.qeSignature, la.qeSignature + 64), lb.qeSignature);
    // Also A's attestation key and body signature, so the quote's own signature holds.
    spliced.set(a.quote.subarray(la.attKey, la.attKey + 64), lb.attKey);
    spliced.set(a.quote.subarray(la.signature, la.signature + 64), lb.signature);
    spliced.set(a.quote.subarray(0, la.signedLength), 0);
    const expected = fresh(spliced, optsB);
    expect(expected).toBe('E_EVIDENCE_SIGNATURE: QE report signature is invalid');
    for (const mode of ASYNC_MODES) {
      clearDcapCaches();
      const outs = await Promise.all([
        run(mode, a.quote, optsA),
        run(mode, spliced, optsB),
        run(mode, b.quote, optsB),
      ]);
      expect(outs[0]).toMatch(/^ok /);
      expect(outs[1], mode).toBe(expected);
      expect(outs[2]).toMatch(/^ok /);
      for (const m of MODES) expect(await run(m, spliced, optsB), `${mode} then ${m}`).toBe(expected);
    }
  });
});

describe('attack: a PCK chain carried in the collateral (certification data types 1-4)', () => {
  /** `quote` (SGX v3) with its certification data replaced by type 3 (an encrypted PPID) and the chain it carried. */
  function ppidOnly(quote: Uint8Array): { quote: Uint8Array; chain: string } {
    const l = layout(quote);
    const chain = Buffer.from(l.q.certification.certData).toString('latin1');
    const typeAt = l.certData - 6;
    const ppid = Buffer.alloc(384, 0x5c);
    const head = Buffer.from(quote.subarray(0, typeAt));
    const tail = Buffer.alloc(6);
    tail.writeUInt16LE(3, 0);
    tail.writeUInt32LE(ppid.length, 2);
    const out = new Uint8Array(Buffer.concat([head, tail, ppid]));
    Buffer.from(out.buffer, out.byteOffset).writeUInt32LE(out.length - l.signedLength - 4, l.signedLength);
    return { quote: out, chain };
  }

  it('the chain field changed on a collateral object that passed is checked again', async () => {
    const s = await makeSyntheticSgx();
    const { quote, chain } = ppidOnly(s.quote);
    // The altered chain: the leaf's signature changed, as leafSignatureAltered does in a quote.
    const altered = Buffer.from(layout(leafSignatureAltered(s.quote)).q.certification.certData).toString(
      'latin1',
    );
    expect(altered).not.toBe(chain);
    const base = { now: s.now, roots: roots(s) };
    expect(fresh(quote, { ...base, collateral: { ...s.collateral, pck_certificate_chain: chain } })).toMatch(
      /^ok /,
    );
    const expected = fresh(quote, {
      ...base,
      collateral: { ...s.collateral, pck_certificate_chain: altered },
    });
    expect(expected).toBe('E_EVIDENCE_CHAIN: PCK chain[0]: certificate signature is invalid');
    for (const mode of MODES) {
      clearDcapCaches();
      const obj: Record<string, unknown> = { ...s.collateral, pck_certificate_chain: chain };
      const opts = { ...base, collateral: obj };
      expect(await run(mode, quote, opts), mode).toMatch(/^ok /);
      expect(await run(mode, quote, opts), mode).toMatch(/^ok /);
      obj.pck_certificate_chain = altered;
      expect(await run(mode, quote, opts), mode).toBe(expected);
      // camelCase beside snake_case: the camelCase one is read.
      obj.pck_certificate_chain = chain;
      obj.pckCertificateChain = altered;
      expect(await run(mode, quote, opts), `${mode} camelCase`).toBe(expected);
    }
  });
});
