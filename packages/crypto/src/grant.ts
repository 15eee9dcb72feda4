import {
  assertBytes,
  bytesEqual,
  bytesToHex,
  canonicalize,
  encodeFields,
  FirnError,
  type FirnErrorOptions,
  type Hex,
  hexBytes,
  TAGS,
  u64be,
  utf8,
} from '@firn/core';
import { hpkeOpen, hpkeSeal, kemPublicKeyOf } from './hpke.ts';
import { addressOf, recoverAddress, signDigest, taggedDigest } from './signatures.ts';

/**
 * A grant lets one attested enclave use one artifact: the owner wraps the artifact's data key to
 * the enclave's KEM key and signs the terms (which job or workload, until when) with an Ethereum
 * key. The enclave checks the grant before it unwraps, and refuses any use outside it.
 */

/** Version 2 added `issuedAt` (the chain time the grant was made at). */
export const GRANT_VERSION = 2;
export const MAX_GRANT_JSON_BYTES = 4096;

export interface GrantScope {
  /** Only this job (32 bytes) may use the key, when set. */
  jobId?: Hex;
  /** Only this workload hash (32 bytes) may use the key, when set. */
  workloadHash?: Hex;
}

export interface Grant {
  version: 2;
  /** The owner's Ethereum address (lowercase hex), who signed the grant. */
  owner: Hex;
  artifactId: Hex;
  enclaveId: Hex;
  enclaveKemPublicKey: Hex;
  scope: GrantScope;
  /**
   * Unix seconds: the chain time (latest block timestamp) the owner read when making the grant.
   * The enclave never runs a grant at an earlier time, and raises its monotonic time floor to it
   * (docs/decisions/0852-enclave-time-floor.md). At most expiresAt.
   */
  issuedAt: number;
  /** Unix seconds; the grant is refused at or after this time. */
  expiresAt: number;
  /** HPKE encapsulated key and wrapped 32-byte data key. */
  enc: Hex;
  wrappedKey: Hex;
  /** 65-byte r || s || v over grantDigest(grant). */
  signature: Hex;
}

export class GrantError extends FirnError {
  override readonly name = 'GrantError';
  constructor(
    code: 'E_GRANT_INVALID' | 'E_GRANT_EXPIRED' | 'E_GRANT_SCOPE',
    message: string,
    o: FirnErrorOptions = {},
  ) {
    super(code, message, o);
  }
}

export interface CreateGrantParams {
  /** 32-byte secp256k1 private key of the artifact owner. */
  ownerPrivateKey: Uint8Array;
  artifactId: Hex;
  dataKey: Uint8Array;
  enclaveId: Hex;
  enclaveKemPublicKey: Uint8Array;
  scope: GrantScope;
  expiresAt: number;
  /** Unix seconds: the latest block timestamp the owner has seen; default the local clock. Clamped to expiresAt. */
  issuedAt?: number;
}

const opt = (h: Hex | undefined) => (h === undefined ? new Uint8Array(0) : hexBytes(h, 'scope field', 32));

function checkExpiry(expiresAt: unknown): number {
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt <= 0)
    throw new GrantError('E_GRANT_INVALID', 'expiresAt must be a positive integer (unix seconds)');
  return expiresAt;
}

function checkIssuedAt(issuedAt: unknown, expiresAt: number): number {
  if (typeof issuedAt !== 'number' || !Number.isSafeInteger(issuedAt) || issuedAt <= 0)
    throw new GrantError('E_GRANT_INVALID', 'issuedAt must be a positive integer (unix seconds)');
  if (issuedAt > expiresAt) throw new GrantError('E_GRANT_INVALID', 'issuedAt is after expiresAt');
  return issuedAt;
}

/** HPKE info of the key wrap: binds the wrapped key to this artifact, enclave, scope and expiry. */
function grantInfo(
  g: Pick<Grant, 'artifactId' | 'enclaveId' | 'scope' | 'issuedAt' | 'expiresAt'>,
): Uint8Array {
  return encodeFields([
    utf8(TAGS.grant),
    hexBytes(g.artifactId, 'artifactId', 32),
    hexBytes(g.enclaveId, 'enclaveId', 32),
    opt(g.scope.jobId),
    opt(g.scope.workloadHash),
    u64be(g.issuedAt),
    u64be(g.expiresAt),
  ]);
}

/** The digest the owner signs: every field of the grant except the signature. */
export function grantDigest(g: Omit<Grant, 'signature'>): Uint8Array {
  return taggedDigest(TAGS.grant, [
    Uint8Array.of(g.version),
    hexBytes(g.owner, 'owner', 20),
    hexBytes(g.artifactId, 'artifactId', 32),
    hexBytes(g.enclaveId, 'enclaveId', 32),
    hexBytes(g.enclaveKemPublicKey, 'enclaveKemPublicKey', 32),
    opt(g.scope.jobId),
    opt(g.scope.workloadHash),
    u64be(g.issuedAt),
    u64be(g.expiresAt),
    hexBytes(g.enc, 'enc', 32),
    hexBytes(g.wrappedKey, 'wrappedKey', 48),
  ]);
}

/** Create and sign a grant of `dataKey` to one enclave. */
export async function createGrant(p: CreateGrantParams): Promise<Grant> {
  const dataKey = assertBytes(p.dataKey, 'data key', 32);
  const kem = assertBytes(p.enclaveKemPublicKey, 'enclave KEM public key', 32);
  const scope: GrantScope = {};
  if (p.scope.jobId !== undefined) scope.jobId = bytesToHex(hexBytes(p.scope.jobId, 'jobId', 32));
  if (p.scope.workloadHash !== undefined)
    scope.workloadHash = bytesToHex(hexBytes(p.scope.workloadHash, 'workloadHash', 32));
  const expiresAt = checkExpiry(p.expiresAt);
  const terms = {
    artifactId: bytesToHex(hexBytes(p.artifactId, 'artifactId', 32)),
    enclaveId: bytesToHex(hexBytes(p.enclaveId, 'enclaveId', 32)),
    scope,
    // A grant made after its own expiry is simply expired: issuedAt is clamped, never past expiresAt.
    issuedAt: checkIssuedAt(Math.min(p.issuedAt ?? Math.floor(Date.now() / 1000), expiresAt), expiresAt),
    expiresAt,
  };
  const { enc, ciphertext } = await hpkeSeal(kem, dataKey, { info: grantInfo(terms) });
  const unsigned: Omit<Grant, 'signature'> = {
    version: GRANT_VERSION,
    owner: addressOf(assertBytes(p.ownerPrivateKey, 'owner private key', 32)),
    ...terms,
    enclaveKemPublicKey: bytesToHex(kem),
    enc: bytesToHex(enc),
    wrappedKey: bytesToHex(ciphertext),
  };
  return { ...unsigned, signature: bytesToHex(signDigest(p.ownerPrivateKey, grantDigest(unsigned))) };
}

export interface VerifyGrantContext {
  artifactId: Hex;
  enclaveId: Hex;
  jobId?: Hex;
  workloadHash?: Hex;
  /** Unix seconds, passed in. */
  now: number;
  /** When set, the grant must come from this owner address. */
  owner?: Hex;
  /** When set, the grant must wrap to this KEM public key. */
  enclaveKemPublicKey?: Uint8Array;
}

const same = (a: Hex, b: Hex) => a.toLowerCase() === b.toLowerCase();

/**
 * Check a grant for one use. Proves the owner address signed these exact terms and that this
 * artifact, enclave, job/workload and time fall inside them; it does not prove the owner really
 * owns the artifact (callers compare `owner` with who uploaded it) nor that the wrapped key is the
 * artifact's key (the artifact's key commitment checks that when it is opened).
 */
export function verifyGrant(grantInput: Grant | unknown, ctx: VerifyGrantContext): { owner: Hex } {
  const g = parseGrant(grantInput);
  let signer: Hex;
  try {
    signer = recoverAddress(grantDigest(g), hexBytes(g.signature, 'signature', 65));
  } catch (e) {
    throw new GrantError('E_GRANT_INVALID', 'grant signature is invalid', { cause: e });
  }
  if (signer !== g.owner.toLowerCase())
    throw new GrantError('E_GRANT_INVALID', 'grant is not signed by its owner');
  if (ctx.owner !== undefined && !same(ctx.owner, g.owner))
    throw new GrantError('E_GRANT_INVALID', 'grant comes from another owner');
  if (!same(g.artifactId, ctx.artifactId))
    throw new GrantError('E_GRANT_SCOPE', 'grant is for another artifact');
  if (!same(g.enclaveId, ctx.enclaveId))
    throw new GrantError('E_GRANT_SCOPE', 'grant is for another enclave');
  if (
    ctx.enclaveKemPublicKey !== undefined &&
    !bytesEqual(hexBytes(g.enclaveKemPublicKey, 'enclaveKemPublicKey', 32), ctx.enclaveKemPublicKey)
  )
    throw new GrantError('E_GRANT_SCOPE', 'grant is wrapped to another KEM key');
  if (g.scope.jobId !== undefined && (ctx.jobId === undefined || !same(g.scope.jobId, ctx.jobId)))
    throw new GrantError('E_GRANT_SCOPE', 'grant does not cover this job');
  if (
    g.scope.workloadHash !== undefined &&
    (ctx.workloadHash === undefined || !same(g.scope.workloadHash, ctx.workloadHash))
  )
    throw new GrantError('E_GRANT_SCOPE', 'grant does not cover this workload');
  if (!Number.isSafeInteger(ctx.now)) throw new GrantError('E_GRANT_INVALID', 'now must be unix seconds');
  // A grant is never used before the chain time it was made at: a clock behind it is a wrong clock.
  if (ctx.now >= g.expiresAt || g.issuedAt >= g.expiresAt)
    throw new GrantError('E_GRANT_EXPIRED', 'grant has expired', { details: { expiresAt: g.expiresAt } });
  return { owner: g.owner };
}

/** Unwrap a grant's data key inside the enclave; call verifyGrant first. */
export async function openGrantKey(grant: Grant, enclaveKemPrivateKey: Uint8Array): Promise<Uint8Array> {
  const g = parseGrant(grant);
  if (
    !bytesEqual(
      kemPublicKeyOf(enclaveKemPrivateKey),
      hexBytes(g.enclaveKemPublicKey, 'enclaveKemPublicKey', 32),
    )
  )
    throw new GrantError('E_GRANT_SCOPE', 'grant is wrapped to another KEM key');
  const key = await hpkeOpen(
    enclaveKemPrivateKey,
    hexBytes(g.enc, 'enc', 32),
    hexBytes(g.wrappedKey, 'wrappedKey', 48),
    {
      info: grantInfo(g),
    },
  );
  if (key.length !== 32) throw new FirnError('E_DECRYPT', 'decryption failed');
  return key;
}

/** Canonical JSON of a grant (sorted keys). */
export function grantToJson(grant: Grant): string {
  return JSON.stringify(canonicalize(parseGrant(grant)));
}

const KEYS = new Set([
  'version',
  'owner',
  'artifactId',
  'enclaveId',
  'enclaveKemPublicKey',
  'scope',
  'issuedAt',
  'expiresAt',
  'enc',
  'wrappedKey',
  'signature',
]);

/** Parse a grant from JSON text or an object: size-capped, every field checked, no signature check. */
export function parseGrant(input: unknown): Grant {
  let o: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_GRANT_JSON_BYTES) throw new GrantError('E_GRANT_INVALID', 'grant JSON too large');
    try {
      o = JSON.parse(input);
    } catch {
      throw new GrantError('E_GRANT_INVALID', 'grant is not JSON');
    }
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new GrantError('E_GRANT_INVALID', 'grant must be an object');
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!KEYS.has(k)) throw new GrantError('E_GRANT_INVALID', `unknown grant field ${k}`);
  if (r.version !== GRANT_VERSION) throw new GrantError('E_GRANT_INVALID', 'unsupported grant version');
  const hex = (k: string, len: number): Hex => {
    try {
      return bytesToHex(hexBytes(r[k], k, len));
    } catch (e) {
      throw new GrantError('E_GRANT_INVALID', `grant field ${k} is invalid`, { cause: e });
    }
  };
  const s = r.scope;
  if (typeof s !== 'object' || s === null || Array.isArray(s))
    throw new GrantError('E_GRANT_INVALID', 'scope must be an object');
  const so = s as Record<string, unknown>;
  const scope: GrantScope = {};
  for (const k of Object.keys(so)) {
    if (k !== 'jobId' && k !== 'workloadHash')
      throw new GrantError('E_GRANT_INVALID', `unknown scope field ${k}`);
    if (so[k] === undefined) continue;
    try {
      scope[k] = bytesToHex(hexBytes(so[k], k, 32));
    } catch (e) {
      throw new GrantError('E_GRANT_INVALID', `scope field ${k} is invalid`, { cause: e });
    }
  }
  const expiresAt = checkExpiry(r.expiresAt);
  return {
    version: GRANT_VERSION,
    owner: hex('owner', 20),
    artifactId: hex('artifactId', 32),
    enclaveId: hex('enclaveId', 32),
    enclaveKemPublicKey: hex('enclaveKemPublicKey', 32),
    scope,
    issuedAt: checkIssuedAt(r.issuedAt, expiresAt),
    expiresAt,
    enc: hex('enc', 32),
    wrappedKey: hex('wrappedKey', 48),
    signature: hex('signature', 65),
  };
}
