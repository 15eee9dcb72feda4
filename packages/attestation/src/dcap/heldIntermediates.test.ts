import 'reflect-metadata';
import { createHash, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { agreed } from '../../test/dcap/modes.ts';
import { makeSyntheticSgx, makeSyntheticTdx, type SyntheticDcap } from '../../test/dcap/syntheticDcap.ts';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import {
  INTEL_SGX_INTERMEDIATES_PEM,
  INTEL_SGX_INTERMEDIATES_SHA256,
  INTEL_SGX_ROOT_CA_PEM,
} from './intelRootCa.ts';
import { verifyDcapQuoteSync } from './verifyDcapQuote.ts';
import { pemCertificates } from './x509.ts';

/**
 * Intermediates held beside the roots (decision 1790): the root's signature over each is checked
 * once, when the anchors are built; everything else about them is checked on every call, and a
 * certificate that is not byte for byte a held one is checked in full. Each test performs the
 * attack a held intermediate could open and asserts it fails in every signature mode.
 */

const der = (pem: string) => new Uint8Array(Buffer.from(pem));
const roots = (s: SyntheticDcap) => [der(s.rootPem)];
const held = (s: SyntheticDcap) => s.intermediatePems.map(der);

describe("Intel's pinned intermediates", () => {
  it('are the PCK Processor CA, the PCK Platform CA and the TCB Signing certificate, each issued by the pinned root', () => {
    const root = new X509Certificate(INTEL_SGX_ROOT_CA_PEM);
    const certs = pemCertificates(INTEL_SGX_INTERMEDIATES_PEM, 'intermediates');
    expect(certs.map((d) => createHash('sha256').update(d).digest('hex'))).toEqual([
      ...INTEL_SGX_INTERMEDIATES_SHA256,
    ]);
    const names = certs.map((d) => {
      const c = new X509Certificate(d);
      expect(c.verify(root.publicKey)).toBe(true);
      expect(c.checkIssued(root)).toBe(true);
      return /CN=([^\n]+)/.exec(c.subject)?.[1];
    });
    expect(names).toEqual([
      'Intel SGX PCK Processor CA',
      'Intel SGX PCK Platform CA',
      'Intel SGX TCB Signing',
    ]);
  });

  it('are the very certificates the recorded Intel chains carry (so the real vectors take the held path)', () => {
    const heldDers = pemCertificates(INTEL_SGX_INTERMEDIATES_PEM, 'intermediates').map((d) =>
      Buffer.from(d).toString('hex'),
    );
    for (const v of [VECTORS.sgx, VECTORS.tdx]) {
      const col = vectorJson(v.collateral);
      for (const f of ['pck_crl_issuer_chain', 'tcb_info_issuer_chain']) {
        const first = pemCertificates(col[f] as string, f)[0]!;
        expect(heldDers).toContain(Buffer.from(first).toString('hex'));
      }
    }
  });

  it('a copy of the TCB Signing certificate with one signature byte changed is checked in full and refused', async () => {
    const col = vectorJson(VECTORS.sgx.collateral);
    const [signer, ...rest] = pemCertificates(col.tcb_info_issuer_chain as string, 'chain');
    const forged = signer!.slice();
    forged[forged.length - 1]! ^= 1;
    const pem = [forged, ...rest]
      .map(
        (d) =>
          `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`,
      )
      .join('');
    const collateral = { ...col, tcb_info_issuer_chain: pem, qe_identity_issuer_chain: pem };
    expect(await agreed(vector(VECTORS.sgx.quote), { collateral, now: VECTORS.sgx.now })).toEqual({
      code: 'E_EVIDENCE_CHAIN',
      message: 'TCB info issuer chain[0]: certificate signature is invalid',
    });
  });
});

describe('intermediates held beside given roots', () => {
  it('change no verdict: the same status with and without them, in every mode', async () => {
    for (const s of [await makeSyntheticSgx(), await makeSyntheticTdx()]) {
      const plain = await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: roots(s) });
      expect(plain).toMatchObject({ status: 'UpToDate' });
      expect(
        await agreed(s.quote, {
          collateral: s.collateral,
          now: s.now,
          roots: roots(s),
          intermediates: held(s),
        }),
      ).toEqual(plain);
    }
  });

  it('a held PCK CA and TCB signer listed in the root CA CRL are revoked', async () => {
    const s = await makeSyntheticSgx({ revokeIntermediates: true });
    const want = { code: 'E_EVIDENCE_REVOKED', message: 'an intermediate or signing certificate is revoked' };
    expect(
      await agreed(s.quote, {
        collateral: s.collateral,
        now: s.now,
        roots: roots(s),
        intermediates: held(s),
      }),
    ).toEqual(want);
    expect(await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: roots(s) })).toEqual(want);
  });

  it('a held intermediate past its notAfter is expired at the verification time', async () => {
    const s = await makeSyntheticSgx({ intermediatesNotAfter: new Date('2025-01-01T00:30:00Z') });
    const o = await agreed(s.quote, {
      collateral: s.collateral,
      now: s.now,
      roots: roots(s),
      intermediates: held(s),
    });
    expect(o).toMatchObject({ code: 'E_EVIDENCE_EXPIRED' });
    expect(await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: roots(s) })).toEqual(o);
  });

  it("a signer with the held certificate's name and key but not its bytes (validity stretched, re-signed) is refused", async () => {
    const s = await makeSyntheticSgx();
    const real = new x509.X509Certificate(s.intermediatePems[1]!);
    const attacker = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const alg = { name: 'ECDSA', hash: 'SHA-256' };
    const stretched = await x509.X509CertificateGenerator.create({
      serialNumber: '03',
      subject: real.subject,
      issuer: real.issuer,
      notBefore: real.notBefore,
      notAfter: new Date('2040-01-01T00:00:00Z'),
      publicKey: await real.publicKey.export({ name: 'ECDSA', namedCurve: 'P-256' }, ['verify']),
      signingKey: attacker.privateKey,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
    });
    const chain = `${stretched.toString('pem')}\n${s.rootPem}`;
    const collateral = { ...s.collateral, tcb_info_issuer_chain: chain, qe_identity_issuer_chain: chain };
    expect(
      await agreed(s.quote, { collateral, now: s.now, roots: roots(s), intermediates: held(s) }),
    ).toEqual({
      code: 'E_EVIDENCE_CHAIN',
      message: 'TCB info issuer chain[0]: certificate signature is invalid',
    });
  });

  it('an intermediate no given root issued is refused before anything is verified', async () => {
    const s = await makeSyntheticSgx();
    const other = await makeSyntheticSgx();
    expect(() =>
      verifyDcapQuoteSync(s.quote, {
        collateral: s.collateral,
        now: s.now,
        roots: roots(s),
        intermediates: [...held(s), der(other.intermediatePems[0]!)],
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_EVIDENCE_CHAIN',
        message: 'intermediate 2 is not issued by a pinned root',
      }),
    );
    expect(() =>
      verifyDcapQuoteSync(s.quote, { collateral: s.collateral, now: s.now, intermediates: held(s) }),
    ).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
  });
});

describe('keys imported on the signature thread (decision 1790)', () => {
  it('an attestation key off the curve, bound by a genuine QE report, fails with the import error in every mode', async () => {
    const s = await makeSyntheticSgx({ attestationKeyOffCurve: true });
    expect(await agreed(s.quote, { collateral: s.collateral, now: s.now, roots: roots(s) })).toEqual({
      code: 'E_EVIDENCE_SIGNATURE',
      message: 'attestation key is not a valid P-256 point',
    });
  });
});
