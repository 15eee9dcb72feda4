import 'reflect-metadata';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { bytesToHex, FirnError, hexToBytes } from '@firn/core';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const YEAR = 365 * 24 * 3600;

/** The locally generated "firn simulated TEE root": plays the vendor's role for simulated platforms. */
export interface SimulatedRoot {
  certificatePem: string;
  privateKeyPkcs8: string; // hex
}

/**
 * A simulated machine: what real hardware keeps in fuses and its quoting enclave. platformId is
 * random per machine; the sealing secret never leaves the platform file.
 */
export interface SimulatedPlatform {
  version: 1;
  platformId: string; // hex, 16 bytes
  sealingSecret: string; // hex, 32 bytes
  attestationKeyPkcs8: string; // hex
  attestationKeyCertPem: string;
  rootCertPem: string;
}

async function importKey(pkcs8Hex: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', hexToBytes(pkcs8Hex), ALG, true, [
    'sign',
  ]) as Promise<webcrypto.CryptoKey>;
}

export async function createSimulatedRoot(
  opts: { now?: number; years?: number } = {},
): Promise<SimulatedRoot> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: bytesToHex(randomBytes(8)).slice(2),
    name: 'CN=firn simulated TEE root, O=firn',
    notBefore: new Date((now - 3600) * 1000),
    notAfter: new Date((now + (opts.years ?? 10) * YEAR) * 1000),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certificatePem: cert.toString('pem'), privateKeyPkcs8: bytesToHex(pkcs8) };
}

export async function createSimulatedPlatform(
  root: SimulatedRoot,
  opts: { now?: number; years?: number } = {},
): Promise<SimulatedPlatform> {
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const rootCert = new x509.X509Certificate(root.certificatePem);
  const rootKey = await importKey(root.privateKeyPkcs8);
  const ak = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const platformId = randomBytes(16);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: bytesToHex(randomBytes(8)).slice(2),
    subject: `CN=firn simulated attestation key ${bytesToHex(platformId).slice(2)}, O=firn`,
    issuer: rootCert.subject,
    notBefore: new Date((now - 3600) * 1000),
    notAfter: new Date((now + (opts.years ?? 5) * YEAR) * 1000),
    signingKey: rootKey,
    publicKey: ak.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', ak.privateKey));
  return {
    version: 1,
    platformId: bytesToHex(platformId),
    sealingSecret: bytesToHex(randomBytes(32)),
    attestationKeyPkcs8: bytesToHex(pkcs8),
    attestationKeyCertPem: cert.toString('pem'),
    rootCertPem: root.certificatePem,
  };
}

/** DER bytes of a PEM certificate, for pinning as a root. */
export function certificateDer(pem: string): Uint8Array {
  try {
    return new Uint8Array(new X509Certificate(pem).raw);
  } catch (e) {
    throw new FirnError('E_INVALID_INPUT', 'not a PEM certificate', { cause: e });
  }
}

export function parseSimulatedPlatform(json: unknown): SimulatedPlatform {
  const o = json as Partial<SimulatedPlatform> | null;
  if (
    o?.version !== 1 ||
    typeof o.platformId !== 'string' ||
    typeof o.sealingSecret !== 'string' ||
    typeof o.attestationKeyPkcs8 !== 'string' ||
    typeof o.attestationKeyCertPem !== 'string' ||
    typeof o.rootCertPem !== 'string'
  )
    throw new FirnError('E_INVALID_INPUT', 'not a simulated platform file');
  return o as SimulatedPlatform;
}
