import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as x509 from '@peculiar/x509';

/**
 * Test-only: a complete synthetic DCAP world under a locally generated test root (root, PCK CA,
 * PCK leaf with Intel's SGX extension, TCB signing cert, both CRLs, signed TCB info and QE
 * identity) and SGX v3 quotes built and signed with it. It exercises paths no real vector can:
 * a revoked PCK, a debug enclave, chosen TCB levels. Never used outside tests.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const subtle = webcrypto.subtle;
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

// Minimal DER encoders for the SGX extension (tests only).
function tlv(tag: number, body: Uint8Array): Uint8Array {
  const len = body.length;
  const head = len < 128 ? [tag, len] : len < 256 ? [tag, 0x81, len] : [tag, 0x82, len >> 8, len & 0xff];
  return Uint8Array.from([...head, ...body]);
}
const seq = (...parts: Uint8Array[]) => tlv(0x30, Buffer.concat(parts));
function oid(dotted: string): Uint8Array {
  const a = dotted.split('.').map(Number);
  const out = [40 * a[0]! + a[1]!];
  for (const n of a.slice(2)) {
    const b = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) b.unshift((v & 0x7f) | 0x80);
    out.push(...b);
  }
  return tlv(0x06, Uint8Array.from(out));
}
const int = (n: number) => tlv(0x02, n < 128 ? Uint8Array.of(n) : Uint8Array.of(0, n));
const oct = (b: Uint8Array) => tlv(0x04, b);
const P = '1.2.840.113741.1.13.1';

export interface SyntheticOptions {
  /** PCK TCB components and PCESVN. */
  cpuSvn?: number[];
  pceSvn?: number;
  fmspc?: string;
  /** FMSPC written in the TCB info (default: the PCK's). */
  tcbFmspc?: string;
  revokePck?: boolean;
  /** SGX ATTRIBUTES flags byte of the application enclave (0x02 = DEBUG). */
  attributesFlags?: number;
  issue?: Date;
  nextUpdate?: Date;
  tcbLevels?: Array<{
    comps: number[];
    pcesvn: number;
    status: string;
    advisoryIDs?: string[];
    /** The level's tcbDate (default 2024-03-13T00:00:00Z). */
    tcbDate?: string;
  }>;
  qeIsvSvn?: number;
  /** QE vendor ID in the quote header, hex (default Intel's). */
  qeVendorId?: string;
  /**
   * Sign the TCB info and QE identity with the PCK leaf's key and name the PCK chain as their issuer
   * chain (a collateral source holding one platform's extracted PCK key), instead of the TCB signer.
   */
  collateralSignedByPck?: boolean;
  /** The root CA CRL lists the PCK CA (serial 02) and the TCB signer (serial 03). */
  revokeIntermediates?: boolean;
  /** notAfter of the PCK CA and the TCB signer (default 2030-01-01, as every certificate). */
  intermediatesNotAfter?: Date;
  /**
   * Flip the last byte of the attestation key in the quote (a point off the curve) and bind that
   * key in the QE report, so that the key is the first thing to fail.
   */
  attestationKeyOffCurve?: boolean;
}

/** A synthetic TDX TD (quote v4 with a TD 1.0 report, or v5 with a TD 1.5 report). */
export interface SyntheticTdxOptions extends SyntheticOptions {
  version?: 4 | 5;
  /** TD ATTRIBUTES as the 8 report bytes in hex (default: SEPT_VE_DISABLE only, 0000001000000000). */
  tdAttributes?: string;
  /** XFAM, 8 report bytes in hex (default e702060000000000). */
  xfam?: string;
  /** MRSERVICETD (v5 only), 48 bytes hex (default zeros). */
  mrServiceTd?: string;
  /** TEE_TCB_SVN (16 components; [1] = 0 so that the tdxModule entry applies). */
  teeTcbSvn?: number[];
}

export interface SyntheticDcap {
  rootPem: string;
  quote: Uint8Array;
  collateral: Record<string, unknown>;
  now: number;
  /**
   * With revokePck: an older PCK CRL by the same CA (thisUpdate ten days before the issue date,
   * same nextUpdate) that does not list the PCK yet, in hex.
   */
  olderPckCrl?: string;
  /** The PCK CA and the TCB signer, PEM, each issued by the root (to hold as intermediates). */
  intermediatePems: string[];
}

async function key() {
  return (await subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function makeSyntheticSgx(o: SyntheticOptions = {}): Promise<SyntheticDcap> {
  return makeSynthetic(o, undefined);
}

/** A synthetic TDX quote and TDX collateral (TCB info v3 with tdxModule, TD_QE identity). */
export async function makeSyntheticTdx(o: SyntheticTdxOptions = {}): Promise<SyntheticDcap> {
  return makeSynthetic(o, o);
}

async function makeSynthetic(
  o: SyntheticOptions,
  tdx: SyntheticTdxOptions | undefined,
): Promise<SyntheticDcap> {
  const issue = o.issue ?? new Date('2025-01-01T00:00:00Z');
  const next = o.nextUpdate ?? new Date('2025-02-01T00:00:00Z');
  const notBefore = new Date('2024-01-01T00:00:00Z');
  const notAfter = new Date('2030-01-01T00:00:00Z');
  const cpuSvn = o.cpuSvn ?? [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
  const pceSvn = o.pceSvn ?? 13;
  const fmspc = o.fmspc ?? '00A067110000';
  const [rootK, caK, pckK, tcbK, attK] = await Promise.all([key(), key(), key(), key(), key()]);
  const ca = (cA: boolean) => [new x509.BasicConstraintsExtension(cA, cA ? 0 : undefined, true)];
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=firn test SGX Root CA',
    notBefore,
    notAfter,
    keys: rootK,
    signingAlgorithm: ALG,
    extensions: ca(true),
  });
  const pckCa = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'CN=firn test SGX PCK Processor CA',
    issuer: root.subject,
    notBefore,
    notAfter: o.intermediatesNotAfter ?? notAfter,
    publicKey: caK.publicKey,
    signingKey: rootK.privateKey,
    signingAlgorithm: ALG,
    extensions: ca(true),
  });
  const tcbSigner = await x509.X509CertificateGenerator.create({
    serialNumber: '03',
    subject: 'CN=firn test SGX TCB Signing',
    issuer: root.subject,
    notBefore,
    notAfter: o.intermediatesNotAfter ?? notAfter,
    publicKey: tcbK.publicKey,
    signingKey: rootK.privateKey,
    signingAlgorithm: ALG,
    extensions: ca(false),
  });
  const tcbItems = cpuSvn.map((v, i) => seq(oid(`${P}.2.${i + 1}`), int(v)));
  const sgxExt = seq(
    seq(oid(`${P}.1`), oct(new Uint8Array(16).fill(0xab))),
    seq(
      oid(`${P}.2`),
      seq(
        ...tcbItems,
        seq(oid(`${P}.2.17`), int(pceSvn)),
        seq(oid(`${P}.2.18`), oct(Uint8Array.from(cpuSvn))),
      ),
    ),
    seq(oid(`${P}.3`), oct(Uint8Array.of(0, 0))),
    seq(oid(`${P}.4`), oct(Buffer.from(fmspc, 'hex'))),
    seq(oid(`${P}.5`), tlv(0x0a, Uint8Array.of(0))),
  );
  const pck = await x509.X509CertificateGenerator.create({
    serialNumber: '0a1b2c',
    subject: 'CN=firn test SGX PCK Certificate',
    issuer: pckCa.subject,
    notBefore,
    notAfter,
    publicKey: pckK.publicKey,
    signingKey: caK.privateKey,
    signingAlgorithm: ALG,
    extensions: [...ca(false), new x509.Extension(P, false, sgxExt)],
  });
  const crl = (issuer: x509.X509Certificate, k: CryptoKey, revoked: string[], thisUpdate = issue) =>
    x509.X509CrlGenerator.create({
      issuer: issuer.subject,
      thisUpdate,
      nextUpdate: next,
      entries: revoked.map((s) => ({ serialNumber: s, revocationDate: issue })),
      signingKey: k,
      signingAlgorithm: ALG,
    });
  const rootCrl = await crl(root, rootK.privateKey, o.revokeIntermediates ? ['7f', '02', '03'] : ['7f']);
  const pckCrl = await crl(pckCa, caK.privateKey, o.revokePck ? ['0a1b2c'] : ['0d0e']);
  const olderPckCrl = o.revokePck
    ? await crl(pckCa, caK.privateKey, ['0d0e'], new Date(issue.getTime() - 10 * 86400_000))
    : undefined;

  const iso = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
  const levels = o.tcbLevels ?? [{ comps: cpuSvn, pcesvn: pceSvn, status: 'UpToDate' }];
  const teeTcbSvn = tdx?.teeTcbSvn ?? [2, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  const tcbInfo = JSON.stringify({
    id: tdx ? 'TDX' : 'SGX',
    version: 3,
    issueDate: iso(issue),
    nextUpdate: iso(next),
    fmspc: o.tcbFmspc ?? fmspc,
    pceId: '0000',
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    ...(tdx
      ? {
          tdxModule: {
            mrsigner: '00'.repeat(48),
            attributes: '0000000000000000',
            attributesMask: 'FFFFFFFFFFFFFFFF',
          },
        }
      : {}),
    tcbLevels: levels.map((l) => ({
      tcb: {
        sgxtcbcomponents: l.comps.map((svn) => ({ svn })),
        pcesvn: l.pcesvn,
        ...(tdx ? { tdxtcbcomponents: teeTcbSvn.map((svn) => ({ svn })) } : {}),
      },
      tcbDate: l.tcbDate ?? '2024-03-13T00:00:00Z',
      tcbStatus: l.status,
      ...(l.advisoryIDs ? { advisoryIDs: l.advisoryIDs } : {}),
    })),
  });
  const qeMrSigner = Buffer.alloc(32, 0x5e);
  const qeIdentity = JSON.stringify({
    id: tdx ? 'TD_QE' : 'QE',
    version: 2,
    issueDate: iso(issue),
    nextUpdate: iso(next),
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: qeMrSigner.toString('hex').toUpperCase(),
    isvprodid: 1,
    tcbLevels: [
      { tcb: { isvsvn: 8 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
      {
        tcb: { isvsvn: 0 },
        tcbDate: '2023-01-01T00:00:00Z',
        tcbStatus: 'OutOfDate',
        advisoryIDs: ['INTEL-SA-00999'],
      },
    ],
  });
  const sign = async (k: CryptoKey, data: Uint8Array) => new Uint8Array(await subtle.sign(ALG, k, data));

  // SGX report body (384 bytes): cpusvn, miscselect, ..., attributes @48, mrenclave @64, mrsigner @128, isvprodid @256, isvsvn @258, reportdata @320.
  const report = (
    attrFlags: number,
    mrSigner: Uint8Array,
    isvProdId: number,
    isvSvn: number,
    reportData: Uint8Array,
  ) => {
    const r = Buffer.alloc(384);
    Buffer.from(cpuSvn).copy(r, 0);
    r[48] = attrFlags;
    r[56] = 0x03;
    r.fill(0x42, 64, 96);
    Buffer.from(mrSigner).copy(r, 128);
    r.writeUInt16LE(isvProdId, 256);
    r.writeUInt16LE(isvSvn, 258);
    Buffer.from(reportData).copy(r, 320);
    return r;
  };
  const header = Buffer.alloc(48);
  header.writeUInt16LE(tdx ? (tdx.version ?? 4) : 3, 0);
  header.writeUInt16LE(2, 2);
  header.writeUInt32LE(tdx ? 0x81 : 0, 4);
  Buffer.from(o.qeVendorId ?? '939a7233f79c4ca9940a0db3957f0607', 'hex').copy(header, 12);
  const app = tdx
    ? tdReport(tdx, teeTcbSvn)
    : report(o.attributesFlags ?? 0x05, Buffer.alloc(32, 0x33), 7, 2, Buffer.alloc(64, 0x77));
  const attRaw = new Uint8Array(await subtle.exportKey('raw', attK.publicKey)).subarray(1);
  if (o.attestationKeyOffCurve) attRaw[63]! ^= 1;
  const authData = Buffer.alloc(32, 0x0a);
  const qeRd = Buffer.concat([
    createHash('sha256').update(attRaw).update(authData).digest(),
    Buffer.alloc(32),
  ]);
  const qeReport = report(0x11, qeMrSigner, 1, o.qeIsvSvn ?? 8, qeRd);
  const pem = [pck, pckCa, root].map((c) => c.toString('pem')).join('\n');
  const signed = Buffer.concat([header, app]);
  const quoteSig = await sign(attK.privateKey, signed);
  const qeSig = await sign(pckK.privateKey, qeReport);
  const u16 = (n: number) => Buffer.from([n & 0xff, n >> 8]);
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const certData = Buffer.from(pem, 'latin1');
  const qeCertData = Buffer.concat([
    qeReport,
    qeSig,
    u16(authData.length),
    authData,
    u16(5),
    u32(certData.length),
    certData,
  ]);
  // v4/v5 wrap the QE report certification data in certification data of type 6.
  const sigData = tdx
    ? Buffer.concat([quoteSig, attRaw, u16(6), u32(qeCertData.length), qeCertData])
    : Buffer.concat([quoteSig, attRaw, qeCertData]);
  const quote = new Uint8Array(Buffer.concat([signed, u32(sigData.length), sigData]));
  const chainPem = (c: x509.X509Certificate) =>
    (c === tcbSigner && o.collateralSignedByPck ? [pck, pckCa, root] : [c, root])
      .map((x) => x.toString('pem'))
      .join('\n');
  const colK = o.collateralSignedByPck ? pckK : tcbK;
  return {
    rootPem: root.toString('pem'),
    intermediatePems: [pckCa.toString('pem'), tcbSigner.toString('pem')],
    quote,
    now: issue.getTime() / 1000 + 3600,
    ...(olderPckCrl ? { olderPckCrl: Buffer.from(olderPckCrl.rawData).toString('hex') } : {}),
    collateral: {
      pck_crl_issuer_chain: chainPem(pckCa),
      root_ca_crl: Buffer.from(rootCrl.rawData).toString('hex'),
      pck_crl: Buffer.from(pckCrl.rawData).toString('hex'),
      tcb_info_issuer_chain: chainPem(tcbSigner),
      tcb_info: tcbInfo,
      tcb_info_signature: Buffer.from(await sign(colK.privateKey, Buffer.from(tcbInfo))).toString('hex'),
      qe_identity_issuer_chain: chainPem(tcbSigner),
      qe_identity: qeIdentity,
      qe_identity_signature: Buffer.from(await sign(colK.privateKey, Buffer.from(qeIdentity))).toString(
        'hex',
      ),
    },
  };
}

/** TD report body: 584 bytes (TD 1.0, quote v4) or, for v5, the body descriptor and 648 bytes (TD 1.5). */
function tdReport(t: SyntheticTdxOptions, teeTcbSvn: number[]): Buffer {
  const v5 = t.version === 5;
  const r = Buffer.alloc(v5 ? 648 : 584);
  Buffer.from(teeTcbSvn).copy(r, 0);
  r.fill(0x5a, 16, 64); // MRSEAM; MRSIGNERSEAM (64..112) stays zero (Intel's module)
  Buffer.from(t.tdAttributes ?? '0000001000000000', 'hex').copy(r, 120);
  Buffer.from(t.xfam ?? 'e702060000000000', 'hex').copy(r, 128);
  r.fill(0x11, 136, 184); // MRTD
  for (let i = 0; i < 4; i++) r.fill(0x20 + i, 328 + 48 * i, 376 + 48 * i); // RTMR0..3
  r.fill(0x77, 520, 584); // REPORTDATA
  if (!v5) return r;
  Buffer.from(t.mrServiceTd ?? '00'.repeat(48), 'hex').copy(r, 600);
  const d = Buffer.alloc(6);
  d.writeUInt16LE(3, 0);
  d.writeUInt32LE(648, 2);
  return Buffer.concat([d, r]);
}
