import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';
import { parseDcapQuote } from './quote.ts';
import { clearDcapCaches, verifyDcapQuote, verifyDcapQuoteSync } from './verifyDcapQuote.ts';
import { parseCertificate, pemCertificates } from './x509.ts';

/**
 * Attack (fixed): a malicious host rewrites the PCK chain in the quote's certification data (it
 * is not covered by any signature) to [leaf, X, root], where X carries the PCK CA's name, CA:true and an
 * RSA public key. lazyKey's publicKey() threw 'certificate key is not an EC key' the FIRST time
 * only: it stored the RSA key before the type check, so every later call returned the RSA key.
 * The same input then got different errors cold vs warm (sync) and sync vs deferred (the deferred
 * path touches X's key in startQuoteChecks, so the canonical check already got the RSA key). Now
 * the first import's outcome, key or error, is kept only once every check on it is made.
 * Correct: every call, every mode, the same error ('certificate key is not an EC key').
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A fresh RSA-2048 key pair (the key a certificate in an ECDSA chain must not carry). */
const rsaKeyPair = () =>
  webcrypto.subtle.generateKey(
    {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-256',
    },
    true,
    ['sign', 'verify'],
  );
/** A fresh P-256 signing key pair. */
const ecKeyPair = () =>
  webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);

const pem = (d: Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`;

async function hostileQuote(): Promise<Uint8Array> {
  const quote = vector(VECTORS.sgx.quote);
  const q = parseDcapQuote(quote);
  const chain = pemCertificates(Buffer.from(q.certification.certData).toString('latin1'), 'pck');
  const leaf = parseCertificate(chain[0]!);
  const root = parseCertificate(chain[chain.length - 1]!);
  const rsa = await rsaKeyPair();
  const ec = await ecKeyPair();
  const x = await x509.X509CertificateGenerator.create({
    serialNumber: '7777',
    subject: new x509.Name(leaf.issuer.slice()),
    issuer: new x509.Name(root.subject.slice()),
    notBefore: new Date('2018-01-01T00:00:00Z'),
    notAfter: new Date('2040-01-01T00:00:00Z'),
    publicKey: rsa.publicKey,
    signingKey: ec.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const certData = Buffer.from(
    pem(chain[0]!) + pem(new Uint8Array(x.rawData)) + pem(chain[chain.length - 1]!),
    'latin1',
  );
  // SGX v3: everything up to certDataSize stays; certData replaced; signatureDataSize adjusted.
  const oldCert = q.certification.certData;
  const certStart = oldCert.byteOffset - quote.byteOffset;
  const head = Buffer.from(quote.subarray(0, certStart));
  head.writeUInt32LE(certData.length, certStart - 4);
  const sigLenAt = q.signedBytes.length;
  const sigLen = head.readUInt32LE(sigLenAt) - oldCert.length + certData.length;
  head.writeUInt32LE(sigLen, sigLenAt);
  return new Uint8Array(Buffer.concat([head, certData]));
}

const opts = () => ({ collateral: vectorJson(VECTORS.sgx.collateral), now: VECTORS.sgx.now });

function syncOutcome(quote: Uint8Array): string {
  try {
    verifyDcapQuoteSync(quote, opts());
    return 'accepted';
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}
async function asyncOutcome(quote: Uint8Array, mode: 'pool' | 'thread' | 'caller' | 'auto'): Promise<string> {
  try {
    await verifyDcapQuote(quote, { ...opts(), signatureThreads: mode });
    return 'accepted';
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}

describe('attack: an RSA key in a CA position of the PCK chain', () => {
  it('sync: a warm call gives the same error as the cold one', async () => {
    const quote = await hostileQuote();
    clearDcapCaches();
    const cold = syncOutcome(quote);
    const warm = syncOutcome(quote);
    expect(cold).toBe('E_EVIDENCE_CHAIN: certificate key is not an EC key');
    expect(warm).toBe(cold);
  });

  it('every mode, cold, gives the error the synchronous order gives', async () => {
    const quote = await hostileQuote();
    clearDcapCaches();
    const sync = syncOutcome(quote);
    const got: Record<string, string> = {};
    for (const mode of ['pool', 'thread', 'caller', 'auto'] as const) {
      clearDcapCaches();
      got[mode] = await asyncOutcome(quote, mode);
    }
    expect(got).toEqual({ pool: sync, thread: sync, caller: sync, auto: sync });
  });
});

describe('attack: an RSA key in a held intermediate (opts.intermediates)', () => {
  it('anchors holding an RSA intermediate fail the same way on every call, not only the first', async () => {
    const ec = await ecKeyPair();
    const rsa = await rsaKeyPair();
    const alg = { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams;
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=Red Team Root',
      notBefore: new Date('2018-01-01T00:00:00Z'),
      notAfter: new Date('2040-01-01T00:00:00Z'),
      keys: ec,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const inter = await x509.X509CertificateGenerator.create({
      serialNumber: '02',
      subject: 'CN=Red Team RSA CA',
      issuer: root.subject,
      notBefore: new Date('2018-01-01T00:00:00Z'),
      notAfter: new Date('2040-01-01T00:00:00Z'),
      publicKey: rsa.publicKey,
      signingKey: ec.privateKey,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const o = {
      ...opts(),
      roots: [new Uint8Array(root.rawData)],
      intermediates: [new Uint8Array(inter.rawData)],
    };
    const run = () => {
      try {
        verifyDcapQuoteSync(vector(VECTORS.sgx.quote), o);
        return 'accepted';
      } catch (e) {
        if (!isFirnError(e)) throw e;
        return `${e.code}: ${e.message}`;
      }
    };
    clearDcapCaches();
    const cold = run();
    expect(cold).toBe('E_EVIDENCE_CHAIN: certificate key is not an EC key');
    expect(run()).toBe(cold);
  });
});
