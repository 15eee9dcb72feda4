import 'reflect-metadata';
import { createHash, createPrivateKey, sign as cryptoSign, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GpuEvidenceEntry } from '@firn/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { C14nCanonicalization, SignedXml } from 'xml-crypto';
import { evaluateGpu, type GpuPolicy } from './evaluateGpu.ts';
import { ocspRequestSerials } from './ocspClient.ts';
import { parseSpdmReport } from './parseSpdmReport.ts';
import {
  der,
  findIssuerByKeyHash,
  issueTestCert,
  readOcspRequest,
  signOcspAnswer,
  type TestCert,
} from './testing/testPki.ts';
import { verifyGpuEvidenceList } from './verifyGpuEvidence.ts';
import { createRimStore, verifyRim } from './verifyRim.ts';

// Revocation of the RIM signing chain (decision 0921, production GPU section). No recorded NVIDIA
// OCSP answer is public and NVIDIA's RIM CA key is NVIDIA's, so the real switch RIM is re-signed
// here by a test RIM CA (root -> CA -> leaf, P-384, same XML-DSig algorithms), whose OCSP answers
// this file signs. The switch evidence is NVIDIA's real one; its device chain cannot be answered
// for (NVIDIA's key), so the device chain stays "not checked" in every case below. What is not
// covered: NVIDIA's real responder ids and certificates.
const DIR = fileURLToPath(new URL('../../vectors/nvidia-attestation-sdk/', import.meta.url));
const text = (f: string) => readFileSync(`${DIR}${f}`, 'utf8');
const SWITCH_RIM = 'switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml';
const NOW = 1780272000;
const ALG_ECDSA_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384';
const ALG_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#sha384';
const ALG_C14N11 = 'http://www.w3.org/2006/12/xml-c14n11';

type Node = TestCert;
const issue = (name: string, issuer: Node | undefined, ca: boolean, serial: string) =>
  issueTestCert(name, issuer, ca, serial, [NOW - 86400 * 365, NOW + 86400 * 365 * 5]);

let root: Node;
let ca: Node;
let leaf: Node;
let rimXml: string;

/** The canonical SignedInfo octets of a RIM, captured through xml-crypto's own verification. */
function signedInfoOctets(xml: string): string {
  let material = '';
  class Capture {
    getAlgorithmName = () => ALG_ECDSA_SHA384;
    verifySignature = (m: string) => {
      material = m;
      return true;
    };
    getSignature = () => '';
  }
  class Sha384 {
    getAlgorithmName = () => ALG_SHA384;
    getHash = (s: string) => createHash('sha384').update(s, 'utf8').digest('base64');
  }
  class C14n11 extends C14nCanonicalization {
    override getAlgorithmName() {
      return ALG_C14N11;
    }
  }
  const sx = new SignedXml({ publicCert: 'unused' });
  sx.SignatureAlgorithms[ALG_ECDSA_SHA384] = Capture as unknown as SignedXml['SignatureAlgorithms'][string];
  sx.HashAlgorithms[ALG_SHA384] = Sha384 as unknown as SignedXml['HashAlgorithms'][string];
  sx.CanonicalizationAlgorithms[ALG_C14N11] = C14n11;
  sx.getCertFromKeyInfo = () => null;
  const sig = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(xml)![0];
  sx.loadSignature(sig);
  sx.checkSignature(xml);
  return material;
}

/** The real switch RIM, its SignedInfo re-signed by the test RIM leaf and its KeyInfo chain replaced. */
async function resign(xml: string): Promise<string> {
  const material = signedInfoOctets(xml);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leaf.keys.privateKey));
  const value = cryptoSign('sha384', Buffer.from(material, 'utf8'), {
    key: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }),
    dsaEncoding: 'ieee-p1363',
  }).toString('base64');
  const b64 = (n: Node) => Buffer.from(n.cert.rawData).toString('base64');
  return xml
    .replace(
      /<ds:SignatureValue>[^<]*<\/ds:SignatureValue>/,
      `<ds:SignatureValue>${value}</ds:SignatureValue>`,
    )
    .replace(
      /<ds:X509Data>[\s\S]*<\/ds:X509Data>/,
      `<ds:X509Data>${[leaf, ca, root].map((n) => `<ds:X509Certificate>${b64(n)}</ds:X509Certificate>`).join('')}</ds:X509Data>`,
    );
}

/** An OCSP responder for the test RIM CA: `revoked` serials are revoked; other issuers get 503. */
function responder(revoked: Set<string>, asked: string[]): typeof fetch {
  return (async (_u: unknown, init?: RequestInit) => {
    const body = init!.body as Uint8Array;
    asked.push(...ocspRequestSerials(body));
    const { reqCert, serial, issuerKeyHash } = readOcspRequest(body);
    const issuer = await findIssuerByKeyHash([root, ca], issuerKeyHash);
    if (issuer === undefined) return new Response(null, { status: 503 });
    const answer = await signOcspAnswer({
      certID: reqCert,
      responder: issuer,
      signer: issuer,
      producedAt: NOW,
      thisUpdate: NOW - 60,
      nextUpdate: NOW + 3600,
      ...(revoked.has(serial) ? { revokedAt: NOW - 3600 } : {}),
    });
    return new Response(answer, { status: 200 });
  }) as unknown as typeof fetch;
}

const entries = () => JSON.parse(text('switch_evidence_ls10.json')) as GpuEvidenceEntry[];
async function verify(revoked: Set<string>, asked: string[] = []) {
  const e = entries();
  return verifyGpuEvidenceList(e, {
    now: NOW,
    expectedNonce: parseSpdmReport(Buffer.from(e[0]!.evidence, 'base64')).requestNonce,
    roots: { rim: [der(root)] },
    rims: createRimStore([{ source: SWITCH_RIM, xml: rimXml }]),
    ocsp: { url: 'http://127.0.0.1:1/ocsp', fetch: responder(revoked, asked) },
  });
}
const PRODUCTION_SWITCH: GpuPolicy = {
  required: 0,
  requiredSwitches: 1,
  requireMeasurementsMatch: true,
  allowRevocationUnchecked: false,
  allowSimulated: false,
};

beforeAll(async () => {
  root = await issue('Test RIM Root CA', undefined, true, '51');
  ca = await issue('Test RIM CA', root, true, '52');
  leaf = await issue('Test RIM signer', ca, false, '5a5b5c');
  rimXml = await resign(text(`rims/${SWITCH_RIM}`));
});

describe('RIM signer chain revocation (OCSP)', () => {
  it('the re-signed RIM verifies under the test RIM root and its chain reaches that root', () => {
    const f = verifyRim(rimXml, { now: NOW, roots: [der(root)] });
    expect(f.signatureValid).toBe(true);
    expect(f.chainValid).toBe(true);
    expect(f.chainToRoot.map((c) => Buffer.from(c).toString('hex'))).toEqual(
      [leaf, ca, root].map((n) => Buffer.from(der(n)).toString('hex')),
    );
  });

  it('good answers for the RIM chain mark the RIM checked; the device chain stays not checked', async () => {
    const asked: string[] = [];
    const [f] = await verify(new Set(), asked);
    expect(f!.measurements).toBe('match');
    expect(f!.rims.vbios).toMatchObject({ revocation: 'checked', revoked: false });
    expect(asked.map((s) => s.replace(/^0+/, ''))).toEqual(expect.arrayContaining(['5a5b5c', '52']));
    expect(f!.revoked).toBe(false);
    expect(f!.revocation).toBe('not-checked');
    expect(f!.revocationStaleSeconds).toBeNull();
  });

  it('attack: the RIM signing certificate is revoked: the GPU facts say revoked and the production policy refuses', async () => {
    const [f] = await verify(new Set(['5a5b5c']));
    expect(f!.measurements).toBe('match');
    expect(f!.rims.vbios).toMatchObject({ revocation: 'checked', revoked: true });
    expect(f!.revoked).toBe(true);
    const v = evaluateGpu([f!], PRODUCTION_SWITCH);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reasons).toContainEqual({
      code: 'E_EVIDENCE_REVOKED',
      message: 'device 0 (LS10): the signing certificate chain of its vbios RIM is revoked',
    });
    // Even a policy that allows unchecked revocation refuses a revoked RIM signer.
    expect(evaluateGpu([f!], { ...PRODUCTION_SWITCH, allowRevocationUnchecked: true }).ok).toBe(false);
  });

  it('attack: the RIM CA (issued by the root) is revoked: refused too', async () => {
    const [f] = await verify(new Set(['52']));
    expect(f!.revoked).toBe(true);
    expect(evaluateGpu([f!], { ...PRODUCTION_SWITCH, allowRevocationUnchecked: true }).ok).toBe(false);
  });

  it('a RIM chain the responder cannot answer for is "not checked", refused by the production policy', async () => {
    const e = entries();
    const [f] = await verifyGpuEvidenceList(e, {
      now: NOW,
      expectedNonce: parseSpdmReport(Buffer.from(e[0]!.evidence, 'base64')).requestNonce,
      roots: { rim: [der(root)] },
      rims: createRimStore([{ source: SWITCH_RIM, xml: rimXml }]),
      ocsp: {
        url: 'http://127.0.0.1:1/ocsp',
        fetch: (async () => new Response(null, { status: 503 })) as unknown as typeof fetch,
      },
    });
    expect(f!.rims.vbios).toMatchObject({ revocation: 'not-checked', revoked: false });
    expect(f!.revocation).toBe('not-checked');
    const v = evaluateGpu([f!], PRODUCTION_SWITCH);
    expect(!v.ok && v.reasons.map((r) => r.code)).toContain('E_EVIDENCE_REVOKED');
  });
});
