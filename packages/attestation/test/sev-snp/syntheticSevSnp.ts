import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { SevSnpProduct } from '../../src/sev-snp/sevSnpReport.ts';

type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * Test-only: a synthetic AMD-shaped PKI (ARK, ASK or ASVK, VCEK or VLEK with AMD's extensions,
 * a CRL) under locally generated keys, and SEV-SNP reports signed with it. It reaches paths no
 * public report does: a debug guest re-signed, a VLEK, a masked chip id, Turin's TCB layout, a
 * VCEK for another TCB, a revoked VCEK. Never used outside tests.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const subtle = webcrypto.subtle;
const PSS = { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 } as const;
const EC = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' } as const;

function tlv(tag: number, body: Uint8Array): Uint8Array {
  const len = body.length;
  const head = len < 128 ? [tag, len] : len < 256 ? [tag, 0x81, len] : [tag, 0x82, len >> 8, len & 0xff];
  return Uint8Array.from([...head, ...body]);
}
const int = (n: number) => tlv(0x02, n < 128 ? Uint8Array.of(n) : Uint8Array.of(0, n));
const ia5 = (s: string) => tlv(0x16, new Uint8Array(Buffer.from(s, 'latin1')));
const AMD = '1.3.6.1.4.1.3704.1';

export interface SyntheticSevSnpOptions {
  product?: SevSnpProduct;
  signingKey?: 'vcek' | 'vlek';
  /** Report version (default 5; 3+ writes the product's CPUID). */
  version?: number;
  /** Guest policy (default 0x30000: SMT allowed, reserved bit 17). */
  policy?: bigint;
  vmpl?: number;
  maskChipId?: boolean;
  chipId?: Uint8Array;
  reportData?: Uint8Array;
  measurement?: Uint8Array;
  hostData?: Uint8Array;
  /** REPORTED_TCB (and current/committed/launch). */
  tcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  /** CURRENT_TCB alone (default: tcb). */
  currentTcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  /** LAUNCH_TCB alone (default: tcb). */
  launchTcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  /** What the VEK certifies (default: tcb). */
  vekTcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  /** hwID the VCEK certifies (default: the chip id, 8 bytes on Turin). */
  vekHwId?: Uint8Array;
  revokeVek?: boolean;
  /** The CRL's thisUpdate (default 2025-01-01; nextUpdate stays 2026-06-01). */
  crlThisUpdate?: Date;
  notBefore?: Date;
  notAfter?: Date;
}

export interface SyntheticSevSnp {
  report: Uint8Array;
  arkPem: string;
  /** ASK (or ASVK) then ARK, as the KDS cert_chain. */
  chainPem: string;
  vekPem: string;
  vekDer: Uint8Array;
  crlDer: Uint8Array;
  now: number;
  product: SevSnpProduct;
}

const CPUID: Record<SevSnpProduct, [number, number]> = {
  Milan: [0x19, 0x01],
  Genoa: [0x19, 0x11],
  Turin: [0x1a, 0x02],
};

function tcbBytes(product: SevSnpProduct, t: NonNullable<SyntheticSevSnpOptions['tcb']>): Uint8Array {
  const b = new Uint8Array(8);
  if (product === 'Turin') {
    b[0] = t.fmc ?? 0;
    b[1] = t.bootloader;
    b[2] = t.tee;
    b[3] = t.snp;
  } else {
    b[0] = t.bootloader;
    b[1] = t.tee;
    b[6] = t.snp;
  }
  b[7] = t.microcode;
  return b;
}

/**
 * The default REPORTED_TCB per product: a current one where the production policy has a minimum
 * (Milan: the GCP vector's, Genoa: the Azure vector's), and a made-up Turin one.
 */
const DEFAULT_TCB: Record<SevSnpProduct, NonNullable<SyntheticSevSnpOptions['tcb']>> = {
  Milan: { bootloader: 4, tee: 0, snp: 27, microcode: 222 },
  Genoa: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
  Turin: { fmc: 1, bootloader: 9, tee: 0, snp: 23, microcode: 72 },
};

const pem = (der: ArrayBuffer | Uint8Array) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der as ArrayBuffer).toString('base64')}\n-----END CERTIFICATE-----\n`;

/** Build a synthetic PKI and a report signed under it. */
export async function makeSyntheticSevSnp(o: SyntheticSevSnpOptions = {}): Promise<SyntheticSevSnp> {
  const product = o.product ?? 'Milan';
  const kind = o.signingKey ?? 'vcek';
  const notBefore = o.notBefore ?? new Date('2024-01-01T00:00:00Z');
  const notAfter = o.notAfter ?? new Date('2031-01-01T00:00:00Z');
  const rsa = async () =>
    (await subtle.generateKey(
      { ...PSS, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
      true,
      ['sign', 'verify'],
    )) as CryptoKeyPair;
  const [arkK, askK] = await Promise.all([rsa(), rsa()]);
  const vekK = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const dn = (cn: string) => `OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices, CN=${cn}`;
  const ark = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '010000',
    name: dn(`ARK-${product}`),
    notBefore,
    notAfter: new Date('2045-01-01T00:00:00Z'),
    keys: arkK,
    signingAlgorithm: PSS,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const ask = await x509.X509CertificateGenerator.create({
    serialNumber: '010001',
    subject: dn(kind === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`),
    issuer: ark.subject,
    notBefore,
    notAfter: new Date('2045-01-01T00:00:00Z'),
    publicKey: askK.publicKey,
    signingKey: arkK.privateKey,
    signingAlgorithm: PSS,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const chipId = o.chipId ?? Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);
  if (product === 'Turin' && o.chipId === undefined) chipId.fill(0, 8);
  const tcb = o.tcb ?? DEFAULT_TCB[product];
  const vt = o.vekTcb ?? tcb;
  const ext = (oid: string, v: Uint8Array) => new x509.Extension(oid, false, v);
  const exts = [
    ext(`${AMD}.1`, int(1)),
    ext(`${AMD}.2`, ia5(product === 'Milan' ? 'Milan-B0' : product)),
    ext(`${AMD}.3.1`, int(vt.bootloader)),
    ext(`${AMD}.3.2`, int(vt.tee)),
    ext(`${AMD}.3.3`, int(vt.snp)),
    ext(`${AMD}.3.8`, int(vt.microcode)),
  ];
  if (product === 'Turin') exts.push(ext(`${AMD}.3.9`, int(vt.fmc ?? 0)));
  if (kind === 'vcek') exts.push(ext(`${AMD}.4`, o.vekHwId ?? chipId.slice(0, product === 'Turin' ? 8 : 64)));
  else exts.push(ext(`${AMD}.5`, ia5('firn-test-csp')));
  const vek = await x509.X509CertificateGenerator.create({
    serialNumber: '0a',
    subject: dn(kind === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK'),
    issuer: ask.subject,
    notBefore,
    notAfter,
    publicKey: vekK.publicKey,
    signingKey: askK.privateKey,
    signingAlgorithm: PSS,
    extensions: exts,
  });
  const crl = await x509.X509CrlGenerator.create({
    issuer: ark.subject,
    thisUpdate: o.crlThisUpdate ?? new Date('2025-01-01T00:00:00Z'),
    nextUpdate: new Date('2026-06-01T00:00:00Z'),
    entries:
      o.revokeVek === true ? [{ serialNumber: '0a', revocationDate: new Date('2025-01-01T00:00:00Z') }] : [],
    signingKey: arkK.privateKey,
    signingAlgorithm: PSS,
  });

  const r = new Uint8Array(0x4a0);
  const dv = new DataView(r.buffer);
  const version = o.version ?? 5;
  dv.setUint32(0x00, version, true);
  dv.setBigUint64(0x08, o.policy ?? 0x30000n, true);
  dv.setUint32(0x30, o.vmpl ?? 0, true);
  dv.setUint32(0x34, 1, true);
  const tb = tcbBytes(product, tcb);
  for (const off of [0x38, 0x180, 0x1e0, 0x1f0]) r.set(tb, off);
  if (o.currentTcb !== undefined) r.set(tcbBytes(product, o.currentTcb), 0x38);
  if (o.launchTcb !== undefined) r.set(tcbBytes(product, o.launchTcb), 0x1f0);
  dv.setUint32(0x40, 1, true);
  dv.setUint32(0x48, (o.maskChipId === true ? 2 : 0) | ((kind === 'vlek' ? 1 : 0) << 2), true);
  r.set(o.reportData ?? new Uint8Array(64).fill(0x5a), 0x50);
  r.set(o.measurement ?? new Uint8Array(48).fill(0x11), 0x90);
  r.set(o.hostData ?? new Uint8Array(32), 0xc0);
  if (version >= 3) {
    r[0x188] = CPUID[product][0];
    r[0x189] = CPUID[product][1];
    r[0x18a] = 1;
  }
  if (o.maskChipId !== true) r.set(chipId, 0x1a0);
  r[0x1e8] = 1;
  r[0x1e9] = 55;
  r[0x1ea] = 1;
  const sig = new Uint8Array(await subtle.sign(EC, vekK.privateKey, r.subarray(0, 0x2a0)));
  r.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), 0x2a0);
  r.set(Uint8Array.from(sig.subarray(48, 96)).reverse(), 0x2e8);
  return {
    report: r,
    arkPem: pem(ark.rawData),
    chainPem: pem(ask.rawData) + pem(ark.rawData),
    vekPem: pem(vek.rawData),
    vekDer: new Uint8Array(vek.rawData),
    crlDer: new Uint8Array(crl.rawData),
    now: Date.parse('2025-06-01T00:00:00Z') / 1000,
    product,
  };
}
