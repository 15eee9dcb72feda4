import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { FirnError, sha384, TAGS, taggedSha256, u32be, utf8 } from '@firn/core';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import {
  restoreSimulatedGpu,
  type SimulatedGpu,
  type SimulatedGpuRootState,
  type SimulatedGpuState,
} from './gpuDevice.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-384' } as const;
const SIG = { name: 'ECDSA', hash: 'SHA-384' } as const;
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
const OID_TCG_DICE_TCB_INFO = '2.23.133.5.4.1';
const OID_TCG_DICE_TCB_INFO_ALIAS = '2.23.133.5.4.1.1';
const TEN_YEARS = 10 * 365 * 86400 * 1000;
/** Certificates start before any devnet clock so tests may pass fixed past times. */
const NOT_BEFORE = new Date(Date.UTC(2020, 0, 1));

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`;
}

async function importPem(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign']);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function issue(p: {
  subject: string;
  issuer: string;
  publicKey: CryptoKey;
  signingKey: CryptoKey;
  ca: boolean;
  pathLength?: number;
  extra?: x509.Extension[];
}): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: p.subject,
    issuer: p.issuer,
    notBefore: NOT_BEFORE,
    notAfter: new Date(NOT_BEFORE.getTime() + 30 * TEN_YEARS),
    signingAlgorithm: SIG,
    publicKey: p.publicKey,
    signingKey: p.signingKey,
    extensions: [
      new x509.BasicConstraintsExtension(p.ca, p.pathLength, true),
      new x509.KeyUsagesExtension(
        p.ca
          ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
          : x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      ...(p.extra ?? []),
    ],
  });
}

/**
 * A locally generated P-384 device root and intermediate, named so no one mistakes them for
 * NVIDIA's. Verifiers accept GPUs under it only when it is passed as a simulated root.
 */
export async function createSimulatedGpuRoot(): Promise<SimulatedGpuRootState> {
  const root = await keyPair();
  const inter = await keyPair();
  const rootName = 'CN=firn simulated GPU root (NOT NVIDIA), O=firn devnet';
  const interName = 'CN=firn simulated GPU provisioner, O=firn devnet';
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: rootName,
    notBefore: NOT_BEFORE,
    notAfter: new Date(NOT_BEFORE.getTime() + 30 * TEN_YEARS),
    signingAlgorithm: SIG,
    keys: root,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const interCert = await issue({
    subject: interName,
    issuer: rootName,
    publicKey: inter.publicKey,
    signingKey: root.privateKey,
    ca: true,
  });
  return {
    rootCertPem: rootCert.toString('pem'),
    intermediateCertPem: interCert.toString('pem'),
    intermediateKeyPem: await pkcs8Pem(inter.privateKey),
  };
}

/**
 * Blackwell layout: DiceTcbInfo under 2.23.133.5.4.1.1 with vendor [0], model [1] and fwids [6]
 * holding the FWID and a second, zero, FWID (as real GB100 leaves do): the FWID is fwids[0],
 * not the extension's tail, so reading it with the Hopper rule gives the wrong value.
 */
function blackwellTcbInfo(fwid: Uint8Array): ArrayBuffer {
  const implicit = (n: number, text: string) =>
    new asn1js.Primitive({
      idBlock: { tagClass: 3, tagNumber: n },
      valueHex: new TextEncoder().encode(text),
    });
  const fwidSeq = (d: Uint8Array) =>
    new asn1js.Sequence({
      value: [new asn1js.ObjectIdentifier({ value: OID_SHA384 }), new asn1js.OctetString({ valueHex: d })],
    });
  const fwids = new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 6 },
    value: [fwidSeq(fwid), fwidSeq(new Uint8Array(48))],
  });
  return new asn1js.Sequence({
    value: [implicit(0, 'firn devnet'), implicit(1, 'simulated GB100'), fwids],
  }).toBER(false);
}

/** DER of a TCG DICE TcbInfo carrying one SHA-384 FWID (the field NVIDIA's FWID check reads). */
function tcbInfo(fwid: Uint8Array): ArrayBuffer {
  const fwids = new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 6 },
    value: [
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: OID_SHA384 }),
          new asn1js.OctetString({ valueHex: fwid }),
        ],
      }),
    ],
  });
  return new asn1js.Sequence({ value: [fwids] }).toBER(false);
}

function defaultMeasurements(driverVersion: string, vbiosVersion: string): string[] {
  const out: string[] = [];
  for (let i = 1; i <= 64; i++) {
    const d = taggedSha256(TAGS.gpuSimMeasurement, u32be(i), utf8(driverVersion), utf8(vbiosVersion));
    out.push(Buffer.from(sha384(d)).toString('hex'));
  }
  return out;
}

/** Create a simulated GPU with a fresh device identity under `root`. */
export async function createSimulatedGpu(opts: {
  root: SimulatedGpuRootState;
  arch?: 'HOPPER' | 'BLACKWELL';
  driverVersion: string;
  vbiosVersion: string;
  measurements?: string[];
}): Promise<SimulatedGpu> {
  if (!/^[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}$/.test(opts.vbiosVersion))
    throw new FirnError('E_INVALID_INPUT', 'vbiosVersion must look like 96.00.9F.00.01');
  if (!/^[0-9.]{1,16}$/.test(opts.driverVersion))
    throw new FirnError('E_INVALID_INPUT', 'driverVersion must be dotted digits');
  const measurements = opts.measurements ?? defaultMeasurements(opts.driverVersion, opts.vbiosVersion);
  if (
    measurements.length === 0 ||
    measurements.length > 255 ||
    !measurements.every((m) => /^[0-9a-fA-F]{96}$/.test(m))
  )
    throw new FirnError('E_INVALID_INPUT', 'measurements must be 1..255 SHA-384 hex values');
  const interKey = await importPem(opts.root.intermediateKeyPem);
  const interCert = new x509.X509Certificate(opts.root.intermediateCertPem);
  const device = await keyPair();
  const leaf = await keyPair();
  const pdi = randomBytes(9).toString('hex').toUpperCase();
  // The device identity certificate names the chip as NVIDIA's do ("GH100 A01 GSP BROM"): the
  // verifier reads the device's kind and architecture from it, not from the `arch` label.
  const chip = opts.arch === 'BLACKWELL' ? 'GB100' : 'GH100';
  const deviceName = `2.5.4.5=${pdi}, O=firn devnet, CN=${chip} A01 GSP BROM`;
  const deviceCert = await issue({
    subject: deviceName,
    issuer: interCert.subject,
    publicKey: device.publicKey,
    signingKey: interKey,
    ca: true,
  });
  const fwid = sha384(taggedSha256(TAGS.gpuSimFirmware, utf8(opts.driverVersion), utf8(opts.vbiosVersion)));
  const leafCert = await issue({
    subject: `2.5.4.5=${randomBytes(20).toString('hex').toUpperCase()}, O=firn devnet, CN=firn simulated GPU attestation leaf`,
    issuer: deviceName,
    publicKey: leaf.publicKey,
    signingKey: device.privateKey,
    ca: false,
    extra: [
      opts.arch === 'BLACKWELL'
        ? new x509.Extension(OID_TCG_DICE_TCB_INFO_ALIAS, false, blackwellTcbInfo(fwid))
        : new x509.Extension(OID_TCG_DICE_TCB_INFO, false, tcbInfo(fwid)),
    ],
  });
  const state: SimulatedGpuState = {
    root: opts.root,
    arch: opts.arch ?? 'HOPPER',
    driverVersion: opts.driverVersion,
    vbiosVersion: opts.vbiosVersion,
    measurements,
    chainPem:
      [leafCert, deviceCert].map((c) => c.toString('pem')).join('\n') +
      `\n${opts.root.intermediateCertPem.trim()}\n${opts.root.rootCertPem.trim()}\n`,
    leafKeyPem: await pkcs8Pem(leaf.privateKey),
    fwidHex: Buffer.from(fwid).toString('hex'),
  };
  return restoreSimulatedGpu(state);
}
