import {
  bytesToHex,
  concatBytes,
  type EvidenceBundle,
  FirnError,
  type Hex,
  hexBytes,
  parseEvidenceBundle,
  TAGS,
  TooLargeError,
  utf8,
} from '@firn/core';
import { taggedDigest } from '@firn/crypto';

/**
 * The key broker's wire format (version 1), shared by the TD that asks for its sealing key and
 * the broker that releases it. The pattern is dstack's KMS and CoCo Trustee's KBS: the TD proves
 * with a quote that a fresh broker nonce and an ephemeral HPKE key came from inside a measured TD;
 * the broker returns the key HPKE-sealed to that ephemeral key and signs the whole answer.
 *
 *   POST /v1/kms/nonce  {}                        -> KmsNonceResponse
 *   POST /v1/kms/key    KmsKeyRequest             -> KmsKeyResponse
 */
export const KMS_PROTOCOL_VERSION = 1;
/** Broker nonces are 32 random bytes. */
export const KMS_NONCE_BYTES = 32;
/** The enclave address slot of a key request's report data: 20 zero bytes (no enclave key exists yet). */
export const KMS_REQUEST_ADDRESS: Uint8Array = new Uint8Array(20);
/** Cap on a key request body (an evidence bundle plus framing). */
export const MAX_KMS_REQUEST_BYTES = (1 << 20) + 4096;
/** Cap on any broker response body. */
export const MAX_KMS_RESPONSE_BYTES = 16 * 1024;
/** A released sealing key is 32 bytes (AES-256-GCM). */
export const KMS_KEY_BYTES = 32;

export interface KmsNonceResponse {
  v: 1;
  /** 32 bytes, hex (opaque to the TD; the broker checks its own MAC in it, decision 1716); valid once, until expiresAt. */
  nonce: Hex;
  /** Unix seconds. */
  expiresAt: number;
}

export interface KmsKeyRequest {
  v: 1;
  /**
   * An evidence bundle whose nonce is the broker's nonce, whose enclaveAddress is
   * KMS_REQUEST_ADDRESS and whose kemPublicKey is the TD's fresh ephemeral HPKE key.
   */
  evidence: EvidenceBundle;
}

export interface KmsKeyResponse {
  v: 1;
  nonce: Hex;
  /** The ephemeral HPKE public key the key is sealed to (echoed from the request). */
  recipient: Hex;
  /** The measurement digest and platform id the broker derived the key for. */
  measurement: Hex;
  platformId: Hex;
  /** HPKE encapsulated key and ciphertext of the 32-byte sealing key. */
  enc: Hex;
  ciphertext: Hex;
  /** secp256k1 signature (65 bytes) by the broker's identity key over kmsResponseFields(...). */
  signature: Hex;
}

function obj(x: unknown, what: string): Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x))
    throw new FirnError('E_INVALID_INPUT', `${what} must be a JSON object`);
  return x as Record<string, unknown>;
}

/** Parse JSON bytes from the network with a size cap. */
export function parseKmsJson(body: Uint8Array | string, cap: number, what: string): unknown {
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (size > cap) throw new TooLargeError(what, size, cap);
  try {
    return JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
  } catch {
    throw new FirnError('E_PARSE', `${what} is not JSON`);
  }
}

/** Shape-check a nonce answer; the TD trusts nothing in it but uses the nonce as given. */
export function parseKmsNonceResponse(x: unknown): KmsNonceResponse {
  const o = obj(x, 'KMS nonce response');
  if (o.v !== KMS_PROTOCOL_VERSION) throw new FirnError('E_UNSUPPORTED', 'unsupported KMS protocol version');
  const nonce = hexBytes(o.nonce, 'nonce', KMS_NONCE_BYTES);
  if (typeof o.expiresAt !== 'number' || !Number.isSafeInteger(o.expiresAt))
    throw new FirnError('E_INVALID_INPUT', 'expiresAt must be unix seconds');
  return { v: 1, nonce: bytesToHex(nonce), expiresAt: o.expiresAt };
}

/** Shape-check a key request from an untrusted caller (the evidence inside is parsed, not verified). */
export function parseKmsKeyRequest(x: unknown): KmsKeyRequest {
  const o = obj(x, 'KMS key request');
  if (o.v !== KMS_PROTOCOL_VERSION) throw new FirnError('E_UNSUPPORTED', 'unsupported KMS protocol version');
  if (o.evidence === undefined)
    throw new FirnError('E_EVIDENCE_MALFORMED', 'a key request must carry evidence from a TEE');
  return { v: 1, evidence: parseEvidenceBundle(o.evidence) };
}

/** Shape-check a key answer; its signature is checked by the caller against the pinned broker. */
export function parseKmsKeyResponse(x: unknown): KmsKeyResponse {
  const o = obj(x, 'KMS key response');
  if (o.v !== KMS_PROTOCOL_VERSION) throw new FirnError('E_UNSUPPORTED', 'unsupported KMS protocol version');
  return {
    v: 1,
    nonce: bytesToHex(hexBytes(o.nonce, 'nonce', KMS_NONCE_BYTES)),
    recipient: bytesToHex(hexBytes(o.recipient, 'recipient', 32)),
    measurement: bytesToHex(hexBytes(o.measurement, 'measurement', 32)),
    platformId: bytesToHex(hexBytes(o.platformId, 'platformId', undefined, 64)),
    enc: bytesToHex(hexBytes(o.enc, 'enc', 32)),
    ciphertext: bytesToHex(hexBytes(o.ciphertext, 'ciphertext', KMS_KEY_BYTES + 16)),
    signature: bytesToHex(hexBytes(o.signature, 'signature', 65)),
  };
}

/** The fields the broker signs (tag TAGS.kmsResponse): every part of the answer but the signature. */
export function kmsResponseFields(r: Omit<KmsKeyResponse, 'v' | 'signature'>): Uint8Array[] {
  return [r.nonce, r.recipient, r.measurement, r.platformId, r.enc, r.ciphertext].map((h) =>
    hexBytes(h, 'field'),
  );
}

/** The digest the broker's identity key signs. */
export function kmsResponseDigest(r: Omit<KmsKeyResponse, 'v' | 'signature'>): Uint8Array {
  return taggedDigest(TAGS.kmsResponse, kmsResponseFields(r));
}

/** HPKE info and aad for the released key: the context, the nonce, and what the key is for. */
export function kmsReleaseHpkeParams(r: { nonce: Hex; measurement: Hex; platformId: Hex }): {
  info: Uint8Array;
  aad: Uint8Array;
} {
  return {
    info: utf8(TAGS.kmsRelease),
    aad: concatBytes(
      hexBytes(r.nonce, 'nonce'),
      hexBytes(r.measurement, 'measurement'),
      hexBytes(r.platformId, 'platformId'),
    ),
  };
}
