import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

// Test-only PKI for the NVIDIA OCSP and RIM revocation tests: P-384 certificates shaped like NVIDIA's
// chains (root -> CA -> leaf) and RFC 6960 OCSP answers signed by whichever key a test chooses (the
// issuer, a look-alike CA, a device key). Not built into the package (tsconfig.build.json excludes
// src/**/testing/**). NO recorded NVIDIA OCSP answer is public, so these answers stand in for
// NVIDIA's; they differ from NVIDIA's real ones in responder ids and certificates.

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
pkijs.setEngine(
  'firn-test-pki',
  new pkijs.CryptoEngine({
    name: 'firn-test-pki',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
);

/** ECDSA P-384 with SHA-384, the algorithm of NVIDIA's device and RIM chains. */
export const EC_P384 = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;

/** Seconds since the epoch to a Date. */
export const T = (s: number): Date => new Date(s * 1000);

/** A test certificate and its key pair (the private key signs what this certificate issues). */
export interface TestCert {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

/**
 * Issues a P-384 certificate `CN=<name>` with a fresh key: self-signed when `issuer` is undefined,
 * else signed by `issuer`'s key. `serial` is hex; `validity` is [notBefore, notAfter] in seconds
 * since the epoch; `ca` sets BasicConstraints cA (critical).
 */
export async function issueTestCert(
  name: string,
  issuer: TestCert | undefined,
  ca: boolean,
  serial: string,
  validity: readonly [notBefore: number, notAfter: number],
): Promise<TestCert> {
  const keys = (await webcrypto.subtle.generateKey(EC_P384, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const common = {
    serialNumber: serial,
    notBefore: T(validity[0]),
    notAfter: T(validity[1]),
    signingAlgorithm: EC_P384,
    extensions: [new x509.BasicConstraintsExtension(ca, undefined, true)],
  };
  const cert =
    issuer === undefined
      ? await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: `CN=${name}`, keys })
      : await x509.X509CertificateGenerator.create({
          ...common,
          subject: `CN=${name}`,
          issuer: issuer.cert.subject,
          publicKey: keys.publicKey,
          signingKey: issuer.keys.privateKey,
        });
  return { cert, keys };
}

/** The certificate as pkijs reads it. */
export const pk = (n: TestCert): pkijs.Certificate => pkijs.Certificate.fromBER(n.cert.rawData);
/** The certificate's DER bytes. */
export const der = (n: TestCert): Uint8Array => new Uint8Array(n.cert.rawData);

/** The first request of a DER OCSPRequest: its CertID, the serial asked (lower-case hex) and the issuer key hash. */
export function readOcspRequest(body: Uint8Array): {
  reqCert: pkijs.CertID;
  serial: string;
  issuerKeyHash: Buffer;
} {
  const req = new pkijs.OCSPRequest({ schema: asn1js.fromBER(body.slice().buffer as ArrayBuffer).result });
  const reqCert = req.tbsRequest.requestList[0]!.reqCert;
  return {
    reqCert,
    serial: Buffer.from(reqCert.serialNumber.valueBlock.valueHexView).toString('hex'),
    issuerKeyHash: Buffer.from(reqCert.issuerKeyHash.valueBlock.valueHexView),
  };
}

/** The candidate whose SHA-384 subjectPublicKey hash is `issuerKeyHash` (an OCSP CertID's), or undefined. */
export async function findIssuerByKeyHash(
  candidates: readonly TestCert[],
  issuerKeyHash: Uint8Array,
): Promise<TestCert | undefined> {
  let found: TestCert | undefined;
  for (const c of candidates) {
    const spki = pk(c).subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
    if (Buffer.from(await webcrypto.subtle.digest('SHA-384', spki)).equals(issuerKeyHash)) found = c;
  }
  return found;
}

/** What one signed OCSP answer says, and who signs it. Times are seconds since the epoch. */
export interface OcspAnswer {
  /** The CertID asked (copied into the SingleResponse). */
  certID: pkijs.CertID;
  /** Whose subject is the responderID (byName). */
  responder: TestCert;
  /** Whose key signs the BasicOCSPResponse; its certificate is the one in `certs`. */
  signer: TestCert;
  producedAt: number;
  thisUpdate: number;
  /** Omitted: no nextUpdate (an answer that never goes stale by its own word). */
  nextUpdate?: number;
  /** Set: status revoked at this time; unset: status good. */
  revokedAt?: number;
}

/** A DER OCSPResponse (successful, id-pkix-ocsp-basic, one SingleResponse) saying what `a` says (RFC 6960 §4.2). */
export async function signOcspAnswer(a: OcspAnswer): Promise<Uint8Array> {
  const basic = new pkijs.BasicOCSPResponse();
  basic.tbsResponseData.responderID = pk(a.responder).subject;
  basic.tbsResponseData.producedAt = T(a.producedAt);
  const single = new pkijs.SingleResponse();
  single.certID = a.certID;
  single.certStatus =
    a.revokedAt !== undefined
      ? new asn1js.Constructed({
          idBlock: { tagClass: 3, tagNumber: 1 },
          value: [new asn1js.GeneralizedTime({ valueDate: T(a.revokedAt) })],
        })
      : new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
  single.thisUpdate = T(a.thisUpdate);
  if (a.nextUpdate !== undefined) single.nextUpdate = T(a.nextUpdate);
  basic.tbsResponseData.responses.push(single);
  basic.certs = [pk(a.signer)];
  await basic.sign(a.signer.keys.privateKey, 'SHA-384');
  const res = new pkijs.OCSPResponse();
  res.responseStatus.valueBlock.valueDec = 0;
  res.responseBytes = new pkijs.ResponseBytes();
  res.responseBytes.responseType = '1.3.6.1.5.5.7.48.1.1';
  res.responseBytes.response = new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) });
  return new Uint8Array(res.toSchema().toBER(false));
}
