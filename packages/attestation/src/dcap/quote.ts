import { ByteReader, FirnError, isFirnError } from '@firn/core';

/** Quotes larger than this are refused before parsing (real ones are 4-8 KiB, with the PCK chain). */
export const MAX_QUOTE_BYTES = 64 * 1024;
/** The certification data's PEM chain is about 4 KiB; anything over this is not Intel's. */
const MAX_CERT_DATA_BYTES = 32 * 1024;
/** QE authentication data is 32 bytes in practice; the format allows up to 2^16 - 1. */
const MAX_QE_AUTH_BYTES = 4096;

export const TEE_TYPE_SGX = 0x00000000;
export const TEE_TYPE_TDX = 0x00000081;
/** Attestation key type 2 = ECDSA-256 with P-256 (the only one DCAP quotes use). */
export const ATT_KEY_ECDSA_P256 = 2;
/** Certification data type 5: the PCK certificate chain as PEM; 6: QE report certification data. */
export const CERT_DATA_PCK_CHAIN = 5;
export const CERT_DATA_QE_REPORT = 6;
/** Intel's QE vendor ID (939A7233-F79C-4CA9-940A-0DB3957F0607), the only one DCAP quotes may name (QVL, dcap-qvl). */
export const INTEL_QE_VENDOR_ID = Uint8Array.from(Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex'));

const TD10_REPORT_LEN = 584;
const TD15_REPORT_LEN = 648;

export interface QuoteHeader {
  version: number;
  attestationKeyType: number;
  teeType: number;
  qeSvn: number;
  pceSvn: number;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

/** SGX REPORTBODY (384 bytes), used for the application enclave and the QE. */
export interface EnclaveReport {
  raw: Uint8Array;
  cpuSvn: Uint8Array;
  miscSelect: number;
  isvExtProdId: Uint8Array;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  configId: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  configSvn: number;
  isvFamilyId: Uint8Array;
  reportData: Uint8Array;
}

/** TDX TD report body: 1.0 (584 bytes), and 1.5 (648 bytes) with TEE_TCB_SVN2 and MRSERVICETD. */
export interface TdReport {
  raw: Uint8Array;
  version: '1.0' | '1.5';
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmr0: Uint8Array;
  rtmr1: Uint8Array;
  rtmr2: Uint8Array;
  rtmr3: Uint8Array;
  reportData: Uint8Array;
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

export interface QeCertificationData {
  qeReport: EnclaveReport;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** Certification data type (5 = PCK chain PEM; 1-4 carry only a PPID and need the chain from collateral). */
  certDataType: number;
  certData: Uint8Array;
}

export type QuoteBody = { kind: 'sgx'; report: EnclaveReport } | { kind: 'tdx'; report: TdReport };

/** A structurally parsed DCAP quote; nothing in it has been verified. */
export interface DcapQuote {
  raw: Uint8Array;
  header: QuoteHeader;
  body: QuoteBody;
  /** The bytes the attestation key signs: header and body (with the v5 body descriptor). */
  signedBytes: Uint8Array;
  signature: Uint8Array;
  attestationKey: Uint8Array;
  certification: QeCertificationData;
}

function parseEnclaveReport(r: ByteReader): EnclaveReport {
  const start = r.offset;
  const cpuSvn = r.take(16, 'cpuSvn');
  const miscSelect = r.u32le('miscSelect');
  r.take(12, 'reserved1');
  const isvExtProdId = r.take(16, 'isvExtProdId');
  const attributes = r.take(16, 'attributes');
  const mrEnclave = r.take(32, 'mrEnclave');
  r.take(32, 'reserved2');
  const mrSigner = r.take(32, 'mrSigner');
  r.take(32, 'reserved3');
  const configId = r.take(64, 'configId');
  const isvProdId = r.u16le('isvProdId');
  const isvSvn = r.u16le('isvSvn');
  const configSvn = r.u16le('configSvn');
  r.take(42, 'reserved4');
  const isvFamilyId = r.take(16, 'isvFamilyId');
  const reportData = r.take(64, 'reportData');
  return {
    raw: r.bytes.subarray(start, r.offset),
    cpuSvn,
    miscSelect,
    isvExtProdId,
    attributes,
    mrEnclave,
    mrSigner,
    configId,
    isvProdId,
    isvSvn,
    configSvn,
    isvFamilyId,
    reportData,
  };
}

function parseTdReport(r: ByteReader, v15: boolean): TdReport {
  const start = r.offset;
  // Built as one literal in the interface's order (no spread of a partial object).
  const teeTcbSvn = r.take(16, 'teeTcbSvn');
  const mrSeam = r.take(48, 'mrSeam');
  const mrSignerSeam = r.take(48, 'mrSignerSeam');
  const seamAttributes = r.take(8, 'seamAttributes');
  const tdAttributes = r.take(8, 'tdAttributes');
  const xfam = r.take(8, 'xfam');
  const mrTd = r.take(48, 'mrTd');
  const mrConfigId = r.take(48, 'mrConfigId');
  const mrOwner = r.take(48, 'mrOwner');
  const mrOwnerConfig = r.take(48, 'mrOwnerConfig');
  const rtmr0 = r.take(48, 'rtmr0');
  const rtmr1 = r.take(48, 'rtmr1');
  const rtmr2 = r.take(48, 'rtmr2');
  const rtmr3 = r.take(48, 'rtmr3');
  const reportData = r.take(64, 'reportData');
  const fields = {
    teeTcbSvn,
    mrSeam,
    mrSignerSeam,
    seamAttributes,
    tdAttributes,
    xfam,
    mrTd,
    mrConfigId,
    mrOwner,
    mrOwnerConfig,
    rtmr0,
    rtmr1,
    rtmr2,
    rtmr3,
    reportData,
  };
  if (!v15) return { ...fields, raw: r.bytes.subarray(start, r.offset), version: '1.0' };
  const teeTcbSvn2 = r.take(16, 'teeTcbSvn2');
  const mrServiceTd = r.take(48, 'mrServiceTd');
  return { ...fields, teeTcbSvn2, mrServiceTd, raw: r.bytes.subarray(start, r.offset), version: '1.5' };
}

function parseQeCertData(r: ByteReader): QeCertificationData {
  const qeReport = parseEnclaveReport(r);
  const qeReportSignature = r.take(64, 'qeReportSignature');
  const authLen = r.u16le('qeAuthDataSize');
  const qeAuthData = r.takeCapped(authLen, MAX_QE_AUTH_BYTES, 'qeAuthData');
  const certDataType = r.u16le('certDataType');
  const certLen = r.u32le('certDataSize');
  const certData = r.takeCapped(certLen, MAX_CERT_DATA_BYTES, 'certData');
  return { qeReport, qeReportSignature, qeAuthData, certDataType, certData };
}

/**
 * Parse an SGX v3 or TDX v4/v5 ECDSA quote. Structure and lengths only: every length field is
 * bounded and any deviation is an E_EVIDENCE_MALFORMED error; no signature is checked here.
 */
export function parseDcapQuote(raw: Uint8Array): DcapQuote {
  if (!(raw instanceof Uint8Array)) throw new FirnError('E_EVIDENCE_MALFORMED', 'quote must be bytes');
  if (raw.length > MAX_QUOTE_BYTES)
    throw new FirnError('E_EVIDENCE_MALFORMED', `quote is ${raw.length} bytes, over ${MAX_QUOTE_BYTES}`);
  try {
    return parseInner(raw);
  } catch (e) {
    if (isFirnError(e) && e.code === 'E_EVIDENCE_MALFORMED') throw e;
    throw new FirnError('E_EVIDENCE_MALFORMED', `quote: ${e instanceof Error ? e.message : 'unparseable'}`, {
      cause: e,
    });
  }
}

function parseInner(raw: Uint8Array): DcapQuote {
  const r = new ByteReader(raw, 'quote');
  const header: QuoteHeader = {
    version: r.u16le('version'),
    attestationKeyType: r.u16le('attestationKeyType'),
    teeType: r.u32le('teeType'),
    qeSvn: r.u16le('qeSvn'),
    pceSvn: r.u16le('pceSvn'),
    qeVendorId: r.take(16, 'qeVendorId'),
    userData: r.take(20, 'userData'),
  };
  if (header.attestationKeyType !== ATT_KEY_ECDSA_P256)
    throw new FirnError(
      'E_EVIDENCE_MALFORMED',
      `unsupported attestation key type ${header.attestationKeyType}`,
    );
  let body: QuoteBody;
  const { version, teeType } = header;
  if (teeType === TEE_TYPE_SGX && version === 3) {
    body = { kind: 'sgx', report: parseEnclaveReport(r) };
  } else if (teeType === TEE_TYPE_TDX && version === 4) {
    body = { kind: 'tdx', report: parseTdReport(r, false) };
  } else if (teeType === TEE_TYPE_TDX && version === 5) {
    const bodyType = r.u16le('bodyType');
    const bodySize = r.u32le('bodySize');
    if (bodyType === 2 && bodySize === TD10_REPORT_LEN)
      body = { kind: 'tdx', report: parseTdReport(r, false) };
    else if (bodyType === 3 && bodySize === TD15_REPORT_LEN)
      body = { kind: 'tdx', report: parseTdReport(r, true) };
    else
      throw new FirnError(
        'E_EVIDENCE_MALFORMED',
        `unsupported v5 body type ${bodyType} of ${bodySize} bytes`,
      );
  } else {
    throw new FirnError(
      'E_EVIDENCE_MALFORMED',
      `unsupported quote version ${version} for TEE type 0x${teeType.toString(16)}`,
    );
  }
  const signedBytes = raw.subarray(0, r.offset);
  const sigLen = r.u32le('signatureDataSize');
  const sd = new ByteReader(r.take(sigLen, 'signatureData'), 'quote signature data');
  // Quote generators pad quotes to a fixed buffer size; the padding must be zeros.
  if (r.take(r.remaining, 'padding').some((x) => x !== 0))
    throw new FirnError('E_EVIDENCE_MALFORMED', 'non-zero bytes after the signature data');
  const signature = sd.take(64, 'signature');
  const attestationKey = sd.take(64, 'attestationKey');
  let certification: QeCertificationData;
  if (version === 3) {
    certification = parseQeCertData(sd);
  } else {
    const type = sd.u16le('certDataType');
    const size = sd.u32le('certDataSize');
    if (type !== CERT_DATA_QE_REPORT)
      throw new FirnError('E_EVIDENCE_MALFORMED', `v${version} certification data type ${type}, expected 6`);
    const inner = new ByteReader(
      sd.takeCapped(size, MAX_CERT_DATA_BYTES + 1024, 'qeReportCertData'),
      'QE report certification data',
    );
    certification = parseQeCertData(inner);
    inner.end('QE report certification data');
    if (certification.certDataType !== CERT_DATA_PCK_CHAIN)
      throw new FirnError(
        'E_EVIDENCE_MALFORMED',
        `nested certification data type ${certification.certDataType}, expected 5`,
      );
  }
  sd.end('signature data');
  return { raw, header, body, signedBytes, signature, attestationKey, certification };
}
