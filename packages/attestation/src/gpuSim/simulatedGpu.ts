import 'reflect-metadata';
import { createPrivateKey, randomBytes, sign as cryptoSign, webcrypto } from 'node:crypto';
import {
  concatBytes,
  FirnError,
  type GpuEvidenceEntry,
  sha384,
  TAGS,
  taggedSha256,
  u32be,
  utf8,
} from '@firn/core';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { OPAQUE_FIELD } from '../nvidia/parseSpdmReport.ts';

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

/** Serialisable state of a simulated device root (a devnet persists it as JSON). */
export interface SimulatedGpuRootState {
  rootCertPem: string;
  intermediateCertPem: string;
  /** PKCS#8 PEM of the intermediate's key: issues device identity certificates. */
  intermediateKeyPem: string;
}

/** Serialisable state of one simulated GPU. */
export interface SimulatedGpuState {
  root: SimulatedGpuRootState;
  arch: string;
  driverVersion: string;
  vbiosVersion: string;
  /** 64 measurement values, hex (48 bytes each). */
  measurements: string[];
  /** Leaf-first PEM chain: FMC leaf, device identity, intermediate, root. */
  chainPem: string;
  leafKeyPem: string;
  fwidHex: string;
}

export interface SimulatedGpu {
  readonly state: SimulatedGpuState;
  /** One evidence entry in NVIDIA's SDK shape, for this 32-byte nonce. */
  collect(gpuNonce: Uint8Array): Promise<GpuEvidenceEntry>;
}

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
  const deviceName = `2.5.4.5=${pdi}, O=firn devnet, CN=firn simulated GPU device identity`;
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

function tlv(type: number, value: Uint8Array): Uint8Array {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(type, 0);
  h.writeUInt16LE(value.length, 2);
  return concatBytes(h, value);
}

/** GPUs carry the VBIOS version as u32le of its first four groups, then the fifth group byte. */
function vbiosBytes(v: string): Uint8Array {
  const g = v.split('.').map((x) => Number.parseInt(x, 16));
  const b = Buffer.alloc(8);
  b.writeUInt32LE(((g[0]! << 24) | (g[1]! << 16) | (g[2]! << 8) | g[3]!) >>> 0, 0);
  b[4] = g[4]!;
  return b;
}

/** Rebuild a simulated GPU from its persisted state. */
export function restoreSimulatedGpu(state: SimulatedGpuState): SimulatedGpu {
  const leafKey = createPrivateKey(state.leafKeyPem);
  return {
    state,
    async collect(gpuNonce: Uint8Array): Promise<GpuEvidenceEntry> {
      if (!(gpuNonce instanceof Uint8Array) || gpuNonce.length !== 32)
        throw new FirnError('E_INVALID_INPUT', 'GPU nonce must be 32 bytes');
      // GET_MEASUREMENTS, SPDM 1.1, signature requested (param1 bit 0), all blocks (param2 0xff), slot 0.
      const request = concatBytes(Uint8Array.of(0x11, 0xe0, 0x01, 0xff), gpuNonce, Uint8Array.of(0));
      const blocks = state.measurements.map((hex, i) => {
        const v = Buffer.from(hex, 'hex');
        const m = Buffer.alloc(7);
        m[0] = i + 1;
        m[1] = 1; // DMTF measurement specification
        m.writeUInt16LE(3 + v.length, 2);
        m[4] = 0x01; // DMTF value type: firmware, digest
        m.writeUInt16LE(v.length, 5);
        return concatBytes(m, v);
      });
      const record = concatBytes(...blocks);
      const opaque = concatBytes(
        tlv(OPAQUE_FIELD.vbiosVersion, vbiosBytes(state.vbiosVersion)),
        tlv(OPAQUE_FIELD.chipSku, utf8('sim\0')),
        tlv(OPAQUE_FIELD.project, utf8('sim\0')),
        tlv(OPAQUE_FIELD.projectSku, utf8('0000\0')),
        tlv(OPAQUE_FIELD.driverVersion, utf8(`${state.driverVersion}\0`)),
        tlv(OPAQUE_FIELD.fwid, Buffer.from(state.fwidHex, 'hex')),
      );
      const head = Buffer.alloc(8);
      head.set([0x11, 0x60, 0x00, 0x00, blocks.length], 0);
      head.writeUIntLE(record.length, 5, 3);
      const opaqueLen = Buffer.alloc(2);
      opaqueLen.writeUInt16LE(opaque.length, 0);
      const signed = concatBytes(request, head, record, randomBytes(32), opaqueLen, opaque);
      const signature = cryptoSign('sha384', signed, { key: leafKey, dsaEncoding: 'ieee-p1363' });
      return {
        arch: state.arch,
        nonce: Buffer.from(gpuNonce).toString('hex'),
        evidence: Buffer.from(concatBytes(signed, signature)).toString('base64'),
        certificate: Buffer.from(state.chainPem).toString('base64'),
        driver_version: state.driverVersion,
        vbios_version: state.vbiosVersion,
        version: '1.0',
      };
    },
  };
}
