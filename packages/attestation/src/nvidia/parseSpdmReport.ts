import { ByteReader, bytesToHex, FirnError, type Hex } from '@firn/core';

/** SPDM 1.1 message constants (DSP0274 §10.11: GET_MEASUREMENTS / MEASUREMENTS). */
const SPDM_VERSION_11 = 0x11;
const REQ_GET_MEASUREMENTS = 0xe0;
const RSP_MEASUREMENTS = 0x60;
/** Request header (4) + nonce (32) + SlotIDParam (1). */
export const SPDM_REQUEST_LENGTH = 37;
export const SPDM_NONCE_LENGTH = 32;
/** ECDSA P-384 raw r||s (TPM_ALG_ECDSA_ECC_NIST_P384 in SPDM). */
export const SPDM_SIGNATURE_LENGTH = 96;
/** A real H100 report is ~4.3 KB; nothing legitimate comes near this cap. */
export const MAX_SPDM_REPORT_BYTES = 64 * 1024;
const MAX_OPAQUE_FIELDS = 128;

/** NVIDIA opaque-data TLV type ids (as used by NVIDIA's verifiers). */
export const OPAQUE_FIELD = {
  certIssuerName: 1,
  certAuthorityKeyId: 2,
  driverVersion: 3,
  gpuInfo: 4,
  sku: 5,
  vbiosVersion: 6,
  manufacturerId: 7,
  tamperDetection: 8,
  smc: 9,
  vpr: 10,
  nvdec0Status: 11,
  msrsCount: 12,
  cprInfo: 13,
  boardId: 14,
  chipSku: 15,
  chipSkuMod: 16,
  project: 17,
  projectSku: 18,
  projectSkuMod: 19,
  fwid: 20,
  protectedPcieStatus: 21,
  switchPdi: 22,
  floorsweptPorts: 23,
  positionId: 24,
  lockSwitchStatus: 25,
  gpuLinkConn: 32,
  sysEnableStatus: 33,
  opaqueDataVersion: 34,
  chipInfo: 35,
  featureFlag: 36,
} as const;

export interface SpdmMeasurementBlock {
  /** SPDM measurement index (1-based on NVIDIA devices). */
  index: number;
  /** MeasurementSpecification bit field (1 = DMTF). */
  specification: number;
  /** DMTFSpecMeasurementValueType (bit 7 = raw bit stream). */
  valueType: number;
  value: Uint8Array;
}

export interface SpdmOpaqueField {
  type: number;
  value: Uint8Array;
}

/** A parsed SPDM GET_MEASUREMENTS exchange. Nothing here is verified yet. */
export interface SpdmReport {
  /** The requester's 32-byte nonce (what the device was asked to sign). */
  requestNonce: Uint8Array;
  requestParam1: number;
  requestParam2: number;
  slotId: number;
  responseParam1: number;
  responseParam2: number;
  /** The responder's own 32-byte nonce. */
  responseNonce: Uint8Array;
  blocks: SpdmMeasurementBlock[];
  opaque: SpdmOpaqueField[];
  /** Request || response up to (not including) the signature: what the signature covers. */
  signedBytes: Uint8Array;
  /** Raw r||s, 96 bytes. */
  signature: Uint8Array;
  /** Decoded opaque fields (undefined when the device does not report them, e.g. NVSwitch driver). */
  driverVersion: string | undefined;
  vbiosVersion: string | undefined;
  fwid: Uint8Array | undefined;
  project: string | undefined;
  projectSku: string | undefined;
  chipSku: string | undefined;
  featureFlag: Hex | undefined;
}

export class SpdmParseError extends FirnError {
  override readonly name = 'SpdmParseError';
  constructor(message: string, details?: Record<string, string | number | boolean | null>) {
    super('E_EVIDENCE_MALFORMED', message, details === undefined ? {} : { details });
  }
}

function ascii(value: Uint8Array): string {
  // NVIDIA pads string fields with NULs.
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  const s = Buffer.from(value.subarray(0, end)).toString('latin1');
  if (!/^[\x20-\x7e]*$/.test(s)) throw new SpdmParseError('opaque string field is not printable ASCII');
  return s;
}

/**
 * GPUs carry the VBIOS version as 8 binary bytes (u32le major part, then one byte), NVSwitches as
 * an ASCII string; both are rendered like NVIDIA's tools do ("96.00.9F.00.01").
 */
function vbiosVersion(value: Uint8Array): string {
  if (value.length === 8) {
    const v = Buffer.from(value).readUInt32LE(0).toString(16).padStart(8, '0').toUpperCase();
    const last = value[4]!.toString(16).padStart(2, '0').toUpperCase();
    return `${v.slice(0, 2)}.${v.slice(2, 4)}.${v.slice(4, 6)}.${v.slice(6, 8)}.${last}`;
  }
  return ascii(value).toUpperCase();
}

/**
 * Parse an SPDM 1.1 GET_MEASUREMENTS request (37 bytes) followed by its MEASUREMENTS response,
 * as NVIDIA GPUs and NVSwitches return them. Structure and sizes only; no signature is checked.
 */
export function parseSpdmReport(bytes: Uint8Array): SpdmReport {
  if (!(bytes instanceof Uint8Array)) throw new SpdmParseError('SPDM report must be bytes');
  if (bytes.length > MAX_SPDM_REPORT_BYTES)
    throw new SpdmParseError('SPDM report over size cap', {
      size: bytes.length,
      limit: MAX_SPDM_REPORT_BYTES,
    });
  try {
    return parseInner(bytes);
  } catch (e) {
    if (e instanceof SpdmParseError) throw e;
    if (e instanceof FirnError) throw new SpdmParseError(`SPDM report: ${e.message}`, e.details);
    throw e;
  }
}

function parseInner(bytes: Uint8Array): SpdmReport {
  const r = new ByteReader(bytes, 'SPDM report');
  if (r.u8('request version') !== SPDM_VERSION_11) throw new SpdmParseError('request is not SPDM 1.1');
  if (r.u8('request code') !== REQ_GET_MEASUREMENTS)
    throw new SpdmParseError('request is not GET_MEASUREMENTS');
  const requestParam1 = r.u8('request param1');
  const requestParam2 = r.u8('request param2');
  // Param1 bit 0: a signature was requested; without it the response carries none.
  if ((requestParam1 & 1) !== 1) throw new SpdmParseError('request did not ask for a signature');
  const requestNonce = r.take(SPDM_NONCE_LENGTH, 'request nonce');
  const slotId = r.u8('slot id');

  const respStart = r.offset;
  if (r.u8('response version') !== SPDM_VERSION_11) throw new SpdmParseError('response is not SPDM 1.1');
  if (r.u8('response code') !== RSP_MEASUREMENTS) throw new SpdmParseError('response is not MEASUREMENTS');
  const responseParam1 = r.u8('response param1');
  const responseParam2 = r.u8('response param2');
  const numBlocks = r.u8('number of blocks');
  const recordLen = r.u8('record length') | (r.u8('record length') << 8) | (r.u8('record length') << 16);
  const record = r.take(recordLen, 'measurement record');
  const blocks = parseBlocks(record, numBlocks);
  const responseNonce = r.take(SPDM_NONCE_LENGTH, 'response nonce');
  const opaqueLen = r.u16le('opaque length');
  // DSP0274 caps OpaqueLength at 1024.
  const opaqueBytes = r.takeCapped(opaqueLen, 1024, 'opaque data');
  const opaque = parseOpaque(opaqueBytes);
  const signedEnd = r.offset;
  const signature = r.take(SPDM_SIGNATURE_LENGTH, 'signature');
  r.end('signature');
  if (respStart !== SPDM_REQUEST_LENGTH) throw new SpdmParseError('unexpected request length');

  const get = (t: number): Uint8Array | undefined => opaque.find((f) => f.type === t)?.value;
  const str = (t: number): string | undefined => {
    const v = get(t);
    return v === undefined ? undefined : ascii(v);
  };
  const vb = get(OPAQUE_FIELD.vbiosVersion);
  const ff = get(OPAQUE_FIELD.featureFlag);
  return {
    requestNonce,
    requestParam1,
    requestParam2,
    slotId,
    responseParam1,
    responseParam2,
    responseNonce,
    blocks,
    opaque,
    signedBytes: bytes.subarray(0, signedEnd),
    signature,
    driverVersion: str(OPAQUE_FIELD.driverVersion),
    vbiosVersion: vb === undefined ? undefined : vbiosVersion(vb),
    fwid: get(OPAQUE_FIELD.fwid),
    project: str(OPAQUE_FIELD.project),
    projectSku: str(OPAQUE_FIELD.projectSku),
    chipSku: str(OPAQUE_FIELD.chipSku),
    featureFlag: ff === undefined ? undefined : bytesToHex(ff),
  };
}

function parseBlocks(record: Uint8Array, numBlocks: number): SpdmMeasurementBlock[] {
  const r = new ByteReader(record, 'SPDM measurement record');
  const blocks: SpdmMeasurementBlock[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < numBlocks; i++) {
    const index = r.u8('block index');
    const specification = r.u8('measurement specification');
    const size = r.u16le('measurement size');
    const m = new ByteReader(r.take(size, 'measurement'), 'SPDM measurement');
    const valueType = m.u8('value type');
    const valueSize = m.u16le('value size');
    const value = m.take(valueSize, 'measurement value');
    m.end('measurement value');
    if (seen.has(index)) throw new SpdmParseError('duplicate measurement index', { index });
    seen.add(index);
    blocks.push({ index, specification, valueType, value });
  }
  r.end('measurement record');
  return blocks;
}

function parseOpaque(data: Uint8Array): SpdmOpaqueField[] {
  const r = new ByteReader(data, 'SPDM opaque data');
  const fields: SpdmOpaqueField[] = [];
  const seen = new Set<number>();
  while (r.remaining > 0) {
    if (fields.length >= MAX_OPAQUE_FIELDS) throw new SpdmParseError('too many opaque fields');
    const type = r.u16le('opaque field type');
    const size = r.u16le('opaque field size');
    const value = r.take(size, 'opaque field value');
    // A repeated field would let a parser and a verifier disagree about which value counts.
    if (seen.has(type)) throw new SpdmParseError('duplicate opaque field', { type });
    seen.add(type);
    fields.push({ type, value });
  }
  return fields;
}
