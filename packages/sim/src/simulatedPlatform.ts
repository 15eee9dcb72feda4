import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import type { SimulatedPlatform } from '@firn/attestation';
import { bytesToHex, hexToBytes } from '@firn/core';
import * as x509 from '@peculiar/x509';

/**
 * The simulated TEE's provisioning: a "firn simulated TEE root" (it plays the vendor) and
 * simulated machines certified under it. The devnet and the tests make these; no enclave image
 * and no verifier carries this code (decision 1230). The enclave reads a platform file with
 * `parseSimulatedPlatform` from `@firn/attestation`; verifiers accept its quotes only under a
 * policy that names the simulated root.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const YEAR = 365 * 24 * 3600;

/** The locally generated "firn simulated TEE root": plays the vendor's role for simulated platforms. */
export interface SimulatedRoot {
  certificatePem: string;
  privateKeyPkcs8: string; // hex
}

async function importKey(pkcs8Hex: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', hexToBytes(pkcs8Hex), ALG, true, [
    'sign',
  ]) as Promise<webcrypto.CryptoKey>;
}

/**
 * A new simulated TEE root: a self-signed P-256 CA valid from an hour before `now` (unix seconds,
 * default the clock) for `years` (default 10).
 */
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

/**
 * A new simulated machine under `root`: a random 16-byte platform id, a 32-byte sealing secret
 * and a P-256 attestation key certified by the root for `years` (default 5) from `now`.
 */
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
