import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { makeSyntheticSgx, makeSyntheticTdx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { agreed } from '../../test/dcap/modes.ts';
import type { VerifyDcapOptions } from './verifyDcapQuote.ts';
import { parseCertificate, pemCertificates } from './x509.ts';

/**
 * Where verifyDcapQuote runs its signatures ('pool', 'thread', 'caller', 'auto') and verifyDcapQuoteSync:
 * the verdicts and errors must be the same on every vector, case and attack (decisions 1270, 1450).
 */

/** `der` with the last byte of its SPKI's point flipped: a P-256 key off the curve. */
function offCurveKey(der: Uint8Array): Uint8Array {
  const c = parseCertificate(der);
  const out = der.slice();
  out[c.spki.byteOffset - der.byteOffset + c.spki.length - 1]! ^= 1;
  return out;
}
const pem = (ders: Uint8Array[]) =>
  ders
    .map(
      (d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`,
    )
    .join('');

const CASES = fileURLToPath(new URL('../../vectors/cases/', import.meta.url));
const synthRoots = (s: SyntheticDcap) => [new Uint8Array(Buffer.from(s.rootPem))];

describe('every signature mode gives the same verdicts', () => {
  it('on every recorded vector (pinned Intel root and Intel sample roots)', async () => {
    for (const [name, v] of Object.entries(VECTORS)) {
      const opts: VerifyDcapOptions = { collateral: vectorJson(v.collateral), now: v.now };
      if ('root' in v) opts.roots = [vector(v.root)];
      const o = await agreed(vector(v.quote), opts);
      expect(o, name).toBeDefined();
    }
    const sgx = await agreed(vector(VECTORS.sgx.quote), {
      collateral: vectorJson(VECTORS.sgx.collateral),
      now: VECTORS.sgx.now,
    });
    expect(sgx).toMatchObject({ status: 'ConfigurationAndSWHardeningNeeded' });
  });

  it('on every shared case and each of its collaterals', async () => {
    for (const c of readdirSync(CASES, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      const dir = `${CASES}${c.name}/`;
      const now = Number(readFileSync(`${dir}now.txt`, 'utf8').trim());
      const quote = new Uint8Array(readFileSync(`${dir}quote.bin`));
      const roots = [new Uint8Array(readFileSync(`${dir}root.pem`))];
      for (const f of readdirSync(dir).filter((f) => f.startsWith('collateral') && f.endsWith('.json'))) {
        const collateral = JSON.parse(readFileSync(`${dir}${f}`, 'utf8')) as unknown;
        expect(await agreed(quote, { collateral, now, roots }), `${c.name}/${f}`).toBeDefined();
      }
    }
  });
});

describe('attacks fail alike in every signature mode', () => {
  it('a forged TCB info signature', async () => {
    const s = await makeSyntheticTdx();
    const sig = Buffer.from(s.collateral.tcb_info_signature as string, 'hex');
    sig[5]! ^= 1;
    const collateral = { ...s.collateral, tcb_info_signature: sig.toString('hex') };
    expect(await agreed(s.quote, { collateral, now: s.now, roots: synthRoots(s) })).toEqual({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'TCB info signature is invalid',
    });
  });

  it('collateral signed with a PCK key instead of the TCB signing key', async () => {
    const s = await makeSyntheticTdx({ collateralSignedByPck: true });
    const o = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: synthRoots(s) });
    expect('code' in o && o.code).toMatch(/^E_EVIDENCE_(CHAIN|COLLATERAL)$/);
  });

  it('a revoked PCK', async () => {
    const s = await makeSyntheticSgx({ revokePck: true });
    const o = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: synthRoots(s) });
    expect(o).toMatchObject({ code: 'E_EVIDENCE_REVOKED' });
  });

  it('a PCK CRL with a forged signature', async () => {
    const s = await makeSyntheticSgx();
    const crl = Buffer.from(s.collateral.pck_crl as string, 'hex');
    crl[crl.length - 1]! ^= 1;
    const collateral = { ...s.collateral, pck_crl: crl.toString('hex') };
    expect(await agreed(s.quote, { collateral, now: s.now, roots: synthRoots(s) })).toEqual({
      code: 'E_EVIDENCE_CHAIN',
      message: 'PCK CRL signature is invalid',
    });
  });

  it('a wrong QE identity: Intel-signed, but the TD QE identity given with an SGX quote', async () => {
    const sgx = vectorJson(VECTORS.sgx.collateral);
    const tdx = vectorJson(VECTORS.tdx.collateral);
    const collateral = {
      ...sgx,
      qe_identity: tdx.qe_identity,
      qe_identity_signature: tdx.qe_identity_signature,
    };
    expect(await agreed(vector(VECTORS.sgx.quote), { collateral, now: VECTORS.sgx.now })).toEqual({
      code: 'E_EVIDENCE_COLLATERAL',
      message: 'QE identity is TD_QE but the quote is SGX',
    });
  });

  it('a QE enclave below its identity level lowers the status the same way', async () => {
    const s = await makeSyntheticSgx({ qeIsvSvn: 1 });
    const o = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: synthRoots(s) });
    expect(o).toBeDefined();
  });

  it('a TCB signing certificate whose key is off the curve (decision 1490: imported on the thread there)', async () => {
    const col = vectorJson(VECTORS.sgx.collateral);
    const [signing, ...rest] = pemCertificates(col.tcb_info_issuer_chain as string, 'chain');
    const chain = pem([offCurveKey(signing!), ...rest]);
    const collateral = { ...col, tcb_info_issuer_chain: chain, qe_identity_issuer_chain: chain };
    const o = await agreed(vector(VECTORS.sgx.quote), { collateral, now: VECTORS.sgx.now });
    expect(o).toMatchObject({ code: expect.stringMatching(/^E_EVIDENCE_/) });
  });

  it('a PCK certificate in the quote whose key is off the curve', async () => {
    const quote = vector(VECTORS.sgx.quote);
    const text = Buffer.from(quote).toString('latin1');
    const begin = text.indexOf('-----BEGIN CERTIFICATE-----');
    const end = text.indexOf('-----END CERTIFICATE-----') + '-----END CERTIFICATE-----'.length;
    const [leaf] = pemCertificates(text.slice(begin, end), 'chain');
    const bad = offCurveKey(leaf!);
    // The same length of base64 (one byte flipped), so the quote's sizes still hold.
    const b64 = Buffer.from(bad).toString('base64');
    const body = text
      .slice(begin, end)
      .replace(/-----[A-Z ]+-----/g, '')
      .replace(/\s/g, '');
    expect(b64.length).toBe(body.length);
    let out = text.slice(begin, end);
    let j = 0;
    out = out.replace(/[A-Za-z0-9+/=]{4,}/g, (m) => {
      if (m.includes('BEGIN') || m.includes('END') || m.includes('CERTIFICATE')) return m;
      const r = b64.slice(j, j + m.length);
      j += m.length;
      return r;
    });
    const mutated = new Uint8Array(Buffer.from(text.slice(0, begin) + out + text.slice(end), 'latin1'));
    expect(mutated.length).toBe(quote.length);
    const o = await agreed(mutated, { collateral: vectorJson(VECTORS.sgx.collateral), now: VECTORS.sgx.now });
    expect(o).toMatchObject({ code: expect.stringMatching(/^E_EVIDENCE_/) });
  });

  it('a bad quote signature', async () => {
    const quote = vector(VECTORS.tdx.quote);
    quote[100]! ^= 1;
    expect(
      await agreed(quote, { collateral: vectorJson(VECTORS.tdx.collateral), now: VECTORS.tdx.now }),
    ).toEqual({ code: 'E_EVIDENCE_SIGNATURE', message: 'quote signature is invalid' });
  });
});
