import { FirnError, TooLargeError } from '@firn/core';
import { type DecodeOptions, decode } from 'cborg';

/** Largest attestation document accepted, bytes. Real documents are about 4.5 KiB. */
export const MAX_NITRO_DOCUMENT_BYTES = 16 * 1024;
/** Per-field limits of the AWS attestation document CDDL (aws-nitro-enclaves-nsm-api, attestation_process.md §2.1). */
export const MAX_NITRO_CERT_BYTES = 1024;
export const MAX_NITRO_USER_DATA_BYTES = 512;
export const MAX_NITRO_NONCE_BYTES = 512;
export const MAX_NITRO_PUBLIC_KEY_BYTES = 1024;
/** The CDDL allows 1..32 PCRs, indices 0..31. */
export const MAX_NITRO_PCRS = 32;
/** cabundle: the root and the intermediates (AWS issues root, regional, zonal, instance: 4). */
export const MAX_NITRO_CABUNDLE = 8;
const MAX_MODULE_ID = 256;

/** COSE algorithm -35: ECDSA with SHA-384 (RFC 9053 §2.1). Nitro documents use only this. */
export const COSE_ALG_ES384 = -35;
/** COSE_Sign1 CBOR tag (RFC 9052 §4.2); Nitro emits the untagged form, the tagged form is accepted. */
const COSE_SIGN1_TAG = 0xd2;

/**
 * A Nitro attestation document, parsed but not verified: the COSE_Sign1 parts (RFC 9052 §4.2) and
 * the payload fields of AWS's AttestationDocument CDDL. Nothing here is trusted until
 * verifyNitroDocument has checked the signature and the chain.
 */
export interface NitroDocument {
  /** The protected header as signed (a bstr-wrapped map holding alg -35). */
  protectedHeader: Uint8Array;
  /** The payload as signed (the CBOR AttestationDocument). */
  payload: Uint8Array;
  /** r || s, 96 bytes (ES384, RFC 9053 §2.1). */
  signature: Uint8Array;
  /** "i-<parent instance id>-enc<enclave id>". */
  moduleId: string;
  /** Always "SHA384" (the PCR bank's hash). */
  digest: 'SHA384';
  /** When the NSM produced the document, milliseconds since the unix epoch. */
  timestampMs: number;
  /** PCR index (0..31) to its 48-byte value. */
  pcrs: Map<number, Uint8Array>;
  /** The signing (leaf) certificate, DER. */
  certificate: Uint8Array;
  /** Root first, then intermediates down to the leaf's issuer, DER. */
  cabundle: Uint8Array[];
  publicKey: Uint8Array | null;
  userData: Uint8Array | null;
  nonce: Uint8Array | null;
}

const malformed = (m: string) => new FirnError('E_EVIDENCE_MALFORMED', `Nitro attestation document: ${m}`);

// Duplicate map keys would let two readers see two documents; indefinite lengths are what the NSM
// emits for some payloads, so they are allowed. Undefined, NaN and Infinity never appear in the
// CDDL. Non-minimal encodings are not refused: the signature covers the bytes as sent, so they
// cannot be altered, and refusing them would only refuse a genuine document.
const CBOR_OPTIONS: DecodeOptions = {
  useMaps: true,
  rejectDuplicateMapKeys: true,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
};

function cbor(bytes: Uint8Array, what: string): unknown {
  try {
    return decode(bytes, CBOR_OPTIONS);
  } catch (e) {
    throw new FirnError('E_EVIDENCE_MALFORMED', `Nitro attestation document: ${what} is not valid CBOR`, {
      cause: e,
    });
  }
}

function bytesField(v: unknown, what: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw malformed(`${what} must be a byte string`);
  if (v.length < min || v.length > max)
    throw malformed(`${what} must be ${min}..${max} bytes, got ${v.length}`);
  return v;
}

function optionalBytes(v: unknown, what: string, min: number, max: number): Uint8Array | null {
  return v === null || v === undefined ? null : bytesField(v, what, min, max);
}

const KNOWN_FIELDS = new Set([
  'module_id',
  'digest',
  'timestamp',
  'pcrs',
  'certificate',
  'cabundle',
  'public_key',
  'user_data',
  'nonce',
]);

/**
 * Parse an AWS Nitro Enclaves attestation document: a COSE_Sign1 (RFC 9052 §4.2, untagged or tag
 * 18) whose protected header names ES384 and whose payload is AWS's AttestationDocument
 * (aws-nitro-enclaves-nsm-api docs/attestation_process.md §2.1). Checks sizes and types only, never a
 * signature. Input: at most MAX_NITRO_DOCUMENT_BYTES bytes. Throws TooLargeError (E_TOO_LARGE)
 * over the cap and FirnError E_EVIDENCE_MALFORMED for anything else that does not match the CDDL
 * (unknown payload fields included: unknown variants fail closed).
 */
export function parseNitroDocument(bytes: Uint8Array): NitroDocument {
  if (!(bytes instanceof Uint8Array)) throw malformed('must be bytes');
  if (bytes.length > MAX_NITRO_DOCUMENT_BYTES)
    throw new TooLargeError('Nitro attestation document', bytes.length, MAX_NITRO_DOCUMENT_BYTES);
  if (bytes.length === 0) throw malformed('is empty');
  const body = bytes[0] === COSE_SIGN1_TAG ? bytes.subarray(1) : bytes;
  const outer = cbor(body, 'COSE_Sign1');
  if (!Array.isArray(outer) || outer.length !== 4) throw malformed('COSE_Sign1 must be an array of 4');
  const [protectedHeader, unprotected, payload, signature] = outer as unknown[];
  const ph = bytesField(protectedHeader, 'protected header', 1, 64);
  if (!(unprotected instanceof Map)) throw malformed('unprotected header must be a map');
  if (unprotected.size > 8) throw malformed('unprotected header has too many entries');
  const pl = bytesField(payload, 'payload', 1, MAX_NITRO_DOCUMENT_BYTES);
  const sig = bytesField(signature, 'signature', 96, 96);

  const header = cbor(ph, 'protected header');
  if (!(header instanceof Map)) throw malformed('protected header must be a map');
  if (header.get(1) !== COSE_ALG_ES384)
    throw malformed(`signature algorithm must be ES384 (COSE alg ${COSE_ALG_ES384})`);
  // A critical parameter (2) would ask us to understand something we do not: fail closed.
  if (header.has(2)) throw malformed('protected header lists critical parameters');

  const doc = cbor(pl, 'payload');
  if (!(doc instanceof Map)) throw malformed('payload must be a map');
  for (const k of doc.keys())
    if (typeof k !== 'string' || !KNOWN_FIELDS.has(k))
      throw malformed(`payload has an unknown field ${String(k)}`);

  const moduleId = doc.get('module_id');
  if (typeof moduleId !== 'string' || moduleId.length === 0 || moduleId.length > MAX_MODULE_ID)
    throw malformed(`module_id must be text of 1..${MAX_MODULE_ID} characters`);
  if (doc.get('digest') !== 'SHA384') throw malformed('digest must be SHA384');
  const ts = doc.get('timestamp');
  const timestampMs = typeof ts === 'bigint' ? Number(ts) : ts;
  if (typeof timestampMs !== 'number' || !Number.isSafeInteger(timestampMs) || timestampMs <= 0)
    throw malformed('timestamp must be a positive integer (milliseconds)');

  const pcrsRaw = doc.get('pcrs');
  if (!(pcrsRaw instanceof Map) || pcrsRaw.size === 0 || pcrsRaw.size > MAX_NITRO_PCRS)
    throw malformed(`pcrs must be a map of 1..${MAX_NITRO_PCRS} registers`);
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of pcrsRaw) {
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= MAX_NITRO_PCRS)
      throw malformed('PCR index must be an integer 0..31');
    // SHA384 bank: every register is 48 bytes.
    pcrs.set(k, bytesField(v, `PCR${k}`, 48, 48));
  }
  for (const i of [0, 1, 2]) if (!pcrs.has(i)) throw malformed(`PCR${i} is missing`);

  const certificate = bytesField(doc.get('certificate'), 'certificate', 1, MAX_NITRO_CERT_BYTES);
  const cab = doc.get('cabundle');
  if (!Array.isArray(cab) || cab.length === 0 || cab.length > MAX_NITRO_CABUNDLE)
    throw malformed(`cabundle must list 1..${MAX_NITRO_CABUNDLE} certificates`);
  const cabundle = cab.map((c, i) => bytesField(c, `cabundle[${i}]`, 1, MAX_NITRO_CERT_BYTES));

  return {
    protectedHeader: ph,
    payload: pl,
    signature: sig,
    moduleId,
    digest: 'SHA384',
    timestampMs,
    pcrs,
    certificate,
    cabundle,
    publicKey: optionalBytes(doc.get('public_key'), 'public_key', 1, MAX_NITRO_PUBLIC_KEY_BYTES),
    userData: optionalBytes(doc.get('user_data'), 'user_data', 0, MAX_NITRO_USER_DATA_BYTES),
    nonce: optionalBytes(doc.get('nonce'), 'nonce', 0, MAX_NITRO_NONCE_BYTES),
  };
}
