import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkOcsp } from '../../packages/attestation/src/nvidia/checkOcsp.ts';

// A malicious OCSP responder (or a host replaying recorded answers) against GPU revocation checks.
// The production GPU policy (decision 0921) needs revocation checked by OCSP, or an authenticated
// answer at most a day past its nextUpdate; a revoked GPU must not pass.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
pkijs.setEngine(
  'attack',
  new pkijs.CryptoEngine({
    name: 'attack',
    crypto: webcrypto as unknown as ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'],
  }),
);
const EC = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;
const NOW = 1_760_000_000;
const T = (s: number) => new Date(s * 1000);
interface Node {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}
async function issue(name: string, issuer: Node | undefined, ca: boolean, serial: string): Promise<Node> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const common = {
    serialNumber: serial,
    notBefore: T(NOW - 86400 * 365 * 3),
    notAfter: T(NOW + 86400 * 365 * 10),
    signingAlgorithm: EC,
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
const pk = (n: Node) => pkijs.Certificate.fromBER(n.cert.rawData);
const der = (n: Node) => new Uint8Array(n.cert.rawData);

let root: Node;
let ca: Node;
let leaf: Node;
let sibling: Node;

interface Answer {
  signer: (serial: string) => Node;
  thisUpdate: number;
  nextUpdate?: number;
}

/** A responder answering "good" for every certificate asked, as `a` says. */
function responder(a: Answer): typeof fetch {
  return (async (_url: unknown, init?: RequestInit) => {
    const body = init!.body as Uint8Array;
    const req = new pkijs.OCSPRequest({ schema: asn1js.fromBER(body.slice().buffer as ArrayBuffer).result });
    const reqCert = req.tbsRequest.requestList[0]!.reqCert;
    const signer = a.signer(Buffer.from(reqCert.serialNumber.valueBlock.valueHexView).toString('hex'));
    const basic = new pkijs.BasicOCSPResponse();
    basic.tbsResponseData.responderID = pk(signer).subject;
    basic.tbsResponseData.producedAt = T(a.thisUpdate);
    const single = new pkijs.SingleResponse();
    single.certID = reqCert;
    single.certStatus = new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
    single.thisUpdate = T(a.thisUpdate);
    if (a.nextUpdate !== undefined) single.nextUpdate = T(a.nextUpdate);
    basic.tbsResponseData.responses.push(single);
    basic.certs = [pk(signer)];
    await basic.sign(signer.keys.privateKey, 'SHA-384');
    const res = new pkijs.OCSPResponse();
    res.responseStatus.valueBlock.valueDec = 0;
    res.responseBytes = new pkijs.ResponseBytes();
    res.responseBytes.responseType = '1.3.6.1.5.5.7.48.1.1';
    res.responseBytes.response = new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) });
    return new Response(new Uint8Array(res.toSchema().toBER(false)), { status: 200 });
  }) as unknown as typeof fetch;
}

beforeAll(async () => {
  root = await issue('Test Device Identity CA', undefined, true, '01');
  ca = await issue('Test Provisioner ICA', root, true, '02');
  leaf = await issue('Test GPU leaf', ca, false, '0a0b0c');
  sibling = await issue('Another GPU leaf', ca, false, '0a0b0d');
});
const issuerOf = (serial: string) => (serial === '0a0b0c' ? ca : root);
const chain = () => [der(leaf), der(ca), der(root)];

describe('attack: OCSP replay and unauthorised OCSP signers', () => {
  it('a recorded "good" answer without nextUpdate, two years old, is not a current check', async () => {
    // Replayed forever: with no nextUpdate nothing is ever stale, so a GPU revoked since passes.
    const old = NOW - 2 * 365 * 86400;
    const r = await checkOcsp(
      chain(),
      { url: 'http://127.0.0.1:1/', fetch: responder({ signer: issuerOf, thisUpdate: old }) },
      NOW,
    );
    expect(r.checked).toBe(false);
  });

  it('a "good" answer signed by a device key (another GPU leaf under the same CA) is refused', async () => {
    // A device certificate is no OCSP signer: it is neither the issuing CA nor delegated by it
    // (id-kp-OCSPSigning). One extracted device key must not vouch for every GPU.
    const r = await checkOcsp(
      chain(),
      {
        url: 'http://127.0.0.1:1/',
        fetch: responder({
          signer: (serial) => (serial === '0a0b0c' ? sibling : root),
          thisUpdate: NOW - 60,
          nextUpdate: NOW + 3600,
        }),
      },
      NOW,
    );
    expect(r.checked).toBe(false);
  });
});
