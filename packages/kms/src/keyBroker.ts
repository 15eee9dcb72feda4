import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  type AppraiseOptions,
  type AttestationPolicy,
  appraiseEvidence,
  type VerifiedEvidence,
} from '@firn/attestation';
import {
  assertBytes,
  bytesEqual,
  bytesToHex,
  FirnError,
  type Hex,
  hexBytes,
  taggedSha256,
  TAGS,
  type TeeTypeName,
  utf8,
} from '@firn/core';
import {
  addressOf,
  assertKemRecipientKeys,
  hkdfSha256,
  hpkeSeal,
  publicKeyOf,
  signDigest,
} from '@firn/crypto';
import {
  KMS_KEY_BYTES,
  KMS_NONCE_BYTES,
  KMS_REQUEST_ADDRESS,
  type KmsKeyResponse,
  type KmsNonceResponse,
  kmsReleaseHpkeParams,
  kmsResponseDigest,
  parseKmsKeyRequest,
} from '@firn/enclave';

export interface KeyBrokerOptions {
  /** 32-byte broker master secret; lives only in the broker's (simulated) TEE memory. */
  masterSecret: Uint8Array;
  /**
   * The appraisal policy. It must carry a non-empty measurementAllowList: a broker that would
   * release keys to any measurement is refused at construction (fail closed).
   */
  policy: AttestationPolicy;
  /** Pinned roots per TEE type (the simulated root explicitly), as for appraiseEvidence. */
  roots?: AppraiseOptions['roots'];
  /**
   * The broker's own DCAP collateral (dcap-qvl QuoteCollateralV3). Collateral attached to the
   * evidence replaces a piece of it only when newer (decision 0940), never wholesale.
   */
  collateral?: unknown;
  /**
   * A second allow-list consulted after the policy, e.g. the registry's on-chain measurement
   * allow-list. Both must say yes.
   */
  isMeasurementAllowed?: (teeType: TeeTypeName, measurement: Hex) => Promise<boolean>;
  /** Clock, unix seconds (tests pass their own). */
  now?: () => number;
  /**
   * How long a nonce stays valid, seconds (default 300: a TD's quote through a busy quoting
   * service, on a loaded host, still arrives in time; at most MAX_KMS_NONCE_TTL_SECONDS).
   */
  nonceTtlSeconds?: number;
  /**
   * Used nonces remembered at most until they expire (default 200 000). The broker keeps no state
   * per issued nonce (decision 1716); it remembers a nonce only once a key release has spent it
   * (decision 1731: a refused request spends nothing). When this many unexpired nonces are spent,
   * further key requests are refused E_RATE_LIMITED (nothing is forgotten early: that would let a
   * spent nonce be replayed).
   */
  maxUsedNonces?: number;
}

/** Default nonce lifetime, seconds. */
export const DEFAULT_KMS_NONCE_TTL_SECONDS = 300;
/** Longest nonce lifetime a broker accepts, seconds. */
export const MAX_KMS_NONCE_TTL_SECONDS = 3600;
/** Bytes of a broker nonce: random (12) || expiresAt (u32 BE unix seconds, 4) || MAC (16). */
const NONCE_RANDOM_BYTES = 12;
const NONCE_MAC_BYTES = 16;

/** What the broker released, for its own log: never the key. */
export interface KeyRelease {
  response: KmsKeyResponse;
  facts: VerifiedEvidence;
}

/**
 * Derive the sealing key for one TEE identity: HKDF-SHA256(ikm = master secret, salt = empty,
 * info = SHA-256 over the tag firn/kms-sealing-key/v1 and the length-prefixed teeType,
 * measurement digest and platform id). Same measurement on the same platform: same key; any other
 * code or machine: an unrelated key.
 */
export function deriveKmsSealingKey(
  masterSecret: Uint8Array,
  teeType: TeeTypeName,
  measurement: Uint8Array,
  platformId: Uint8Array,
): Uint8Array {
  assertBytes(masterSecret, 'master secret', 32);
  assertBytes(measurement, 'measurement', 32);
  assertBytes(platformId, 'platformId');
  const info = taggedSha256(TAGS.kmsSealingKey, utf8(teeType), measurement, platformId);
  return hkdfSha256(masterSecret, new Uint8Array(0), info, KMS_KEY_BYTES);
}

/** The broker's secp256k1 identity key, derived from the master secret (stable across restarts). */
export function deriveKmsIdentityKey(masterSecret: Uint8Array): Uint8Array {
  assertBytes(masterSecret, 'master secret', 32);
  return hkdfSha256(masterSecret, new Uint8Array(0), utf8(TAGS.kmsIdentity), 32);
}

/**
 * The TDX key broker (dstack KMS / CoCo Trustee pattern). It hands out single-use nonces; a key
 * request must carry evidence whose report data binds one of them and an ephemeral HPKE key
 * (enclave address slot zero). The evidence goes through appraiseEvidence with the broker's
 * policy (measurement allow-list required); only then is the key for (teeType, measurement,
 * platformId) derived, HPKE-sealed to the ephemeral key and the answer signed with the broker's
 * identity key. Proves to the broker that the requester runs allow-listed code in a genuine TEE
 * on that platform at request time; it does not protect a key once released (that is the TEE's).
 */
export class KeyBroker {
  readonly #opts: KeyBrokerOptions;
  readonly #master: Uint8Array;
  readonly #identityKey: Uint8Array;
  /**
   * HMAC-SHA256 key of this broker's nonces: fresh per broker process, so a restart (which forgets
   * the used-nonce set) also voids every nonce issued before it, and a spent nonce cannot be
   * replayed after a restart.
   */
  readonly #nonceKey: Uint8Array = new Uint8Array(randomBytes(32));
  /** Spent nonces (hex) and their expiry (unix seconds), kept only until they expire. */
  readonly #used = new Map<string, number>();
  /** Nonces whose request is being appraised now: a second request carrying one is refused. */
  readonly #inFlight = new Set<string>();
  /** The broker's identity address; TDs pin it. */
  readonly address: Hex;

  constructor(opts: KeyBrokerOptions) {
    assertBytes(opts.masterSecret, 'master secret', 32);
    if (!opts.policy.measurementAllowList || opts.policy.measurementAllowList.length === 0)
      throw new FirnError(
        'E_INVALID_INPUT',
        'the key broker needs a measurement allow-list (--allow-measurement); it never releases to any code',
      );
    const ttl = opts.nonceTtlSeconds ?? DEFAULT_KMS_NONCE_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_KMS_NONCE_TTL_SECONDS)
      throw new FirnError(
        'E_INVALID_INPUT',
        `nonceTtlSeconds must be a whole number of seconds from 1 to ${MAX_KMS_NONCE_TTL_SECONDS}`,
      );
    this.#opts = opts;
    this.#master = opts.masterSecret.slice();
    this.#identityKey = deriveKmsIdentityKey(this.#master);
    this.address = addressOf(publicKeyOf(this.#identityKey));
  }

  #now(): number {
    return this.#opts.now?.() ?? Math.floor(Date.now() / 1000);
  }

  /** The 16-byte MAC of a nonce's random part and expiry under this broker's nonce key. */
  #nonceMac(random: Uint8Array, expiry: Uint8Array): Uint8Array {
    const h = createHmac('sha256', this.#nonceKey);
    h.update(utf8(TAGS.kmsNonce));
    h.update(random);
    h.update(expiry);
    return new Uint8Array(h.digest()).subarray(0, NONCE_MAC_BYTES);
  }

  /**
   * A fresh single-use nonce, valid for nonceTtlSeconds (decision 1716): 12 random bytes, the
   * expiry (u32 BE unix seconds) and a 16-byte HMAC-SHA256 over both under a key only this broker
   * process holds. Issuing keeps no state, so no caller's nonce requests can push out another
   * caller's nonce; `release` checks the MAC and expiry and then spends it.
   */
  issueNonce(): KmsNonceResponse {
    const expiresAt = this.#now() + (this.#opts.nonceTtlSeconds ?? DEFAULT_KMS_NONCE_TTL_SECONDS);
    const random = new Uint8Array(randomBytes(NONCE_RANDOM_BYTES));
    const expiry = new Uint8Array(4);
    new DataView(expiry.buffer).setUint32(0, expiresAt, false);
    const nonce = new Uint8Array(KMS_NONCE_BYTES);
    nonce.set(random, 0);
    nonce.set(expiry, NONCE_RANDOM_BYTES);
    nonce.set(this.#nonceMac(random, expiry), NONCE_RANDOM_BYTES + 4);
    return { v: 1, nonce: bytesToHex(nonce), expiresAt };
  }

  /**
   * Check that `nonce` is one this broker issued, unexpired, unspent and not carried by a request
   * being appraised now, and reserve it for this request. The caller spends it (`#used`) only when
   * the key is released and otherwise gives the reservation back (decision 1731). Throws
   * E_EVIDENCE_NONCE (not ours, expired, already used or in use) or E_RATE_LIMITED
   * (maxUsedNonces unexpired nonces already spent).
   */
  #reserveNonce(nonce: Hex, now: number): number {
    const b = hexBytes(nonce, 'nonce');
    if (b.length !== KMS_NONCE_BYTES)
      throw new FirnError(
        'E_EVIDENCE_NONCE',
        `a broker nonce is ${KMS_NONCE_BYTES} bytes; ask for a fresh one`,
      );
    const random = b.subarray(0, NONCE_RANDOM_BYTES);
    const expiry = b.subarray(NONCE_RANDOM_BYTES, NONCE_RANDOM_BYTES + 4);
    if (!timingSafeEqual(this.#nonceMac(random, expiry), b.subarray(NONCE_RANDOM_BYTES + 4)))
      throw new FirnError(
        'E_EVIDENCE_NONCE',
        'unknown broker nonce (not issued by this broker process); ask for a fresh one',
      );
    const expiresAt = new DataView(expiry.buffer, expiry.byteOffset, 4).getUint32(0, false);
    if (expiresAt < now) throw new FirnError('E_EVIDENCE_NONCE', 'broker nonce expired; ask for a fresh one');
    if (this.#used.has(nonce) || this.#inFlight.has(nonce))
      throw new FirnError('E_EVIDENCE_NONCE', 'broker nonce already used; ask for a fresh one');
    // Spent nonces are inserted about in expiry order: drop expired ones from the front, and look
    // through them all only when the set is full.
    for (const [n, exp] of this.#used) {
      if (exp >= now) break;
      this.#used.delete(n);
    }
    const max = this.#opts.maxUsedNonces ?? 200_000;
    if (this.#used.size >= max) for (const [n, exp] of this.#used) if (exp < now) this.#used.delete(n);
    if (this.#used.size >= max)
      throw new FirnError('E_RATE_LIMITED', 'the key broker is busy (too many key requests); retry shortly', {
        details: { retryAfterSeconds: 1 },
      });
    this.#inFlight.add(nonce);
    return expiresAt;
  }

  /**
   * Appraise a key request and release the key sealed to its ephemeral HPKE key.
   * Errors (FirnError codes): E_INVALID_INPUT / E_EVIDENCE_MALFORMED (shape), E_EVIDENCE_NONCE
   * (unknown, already used or expired nonce), E_RATE_LIMITED (too many unexpired nonces spent), E_EVIDENCE_BINDING (report data not a key request),
   * and the appraisal's first refusal (E_POLICY_REJECTED for a measurement off the allow-list,
   * E_EVIDENCE_SIGNATURE, E_EVIDENCE_CHAIN, E_EVIDENCE_COLLATERAL, ...), all reasons in the message.
   */
  async release(input: unknown): Promise<KeyRelease> {
    const req = parseKmsKeyRequest(input);
    const ev = req.evidence;
    const nonce = ev.nonce.toLowerCase() as Hex;
    const now = this.#now();
    // Single use: a nonce is spent by the request that gets the key. A refused request spends
    // nothing (decision 1731), so requests carrying junk evidence cannot fill the spent set and
    // lock allow-listed TDs out; while a request is appraised its nonce is reserved.
    const expiresAt = this.#reserveNonce(nonce, now);
    try {
      const release = await this.#appraiseAndRelease(req, nonce, now);
      this.#used.set(nonce, expiresAt);
      return release;
    } finally {
      this.#inFlight.delete(nonce);
    }
  }

  async #appraiseAndRelease(
    req: ReturnType<typeof parseKmsKeyRequest>,
    nonce: Hex,
    now: number,
  ): Promise<KeyRelease> {
    const ev = req.evidence;
    if (!bytesEqual(hexBytes(ev.enclaveAddress, 'enclaveAddress', 20), KMS_REQUEST_ADDRESS))
      throw new FirnError(
        'E_EVIDENCE_BINDING',
        'evidence is not a key request (its enclave address slot must be zero)',
      );
    const appraisal = await appraiseEvidence(ev, {
      now,
      policy: this.#opts.policy,
      expectedNonce: hexBytes(nonce, 'nonce'),
      ...(this.#opts.roots === undefined ? {} : { roots: this.#opts.roots }),
      ...(this.#opts.collateral === undefined ? {} : { collateral: this.#opts.collateral }),
    });
    if (!appraisal.ok) {
      const first = appraisal.reasons[0];
      throw new FirnError(
        (first?.code ?? 'E_POLICY_REJECTED') as FirnError['code'],
        appraisal.reasons.map((r) => `${r.code}: ${r.message}`).join('; '),
      );
    }
    const facts = appraisal.facts;
    const measurement = bytesToHex(facts.measurement);
    if (
      this.#opts.isMeasurementAllowed &&
      !(await this.#opts.isMeasurementAllowed(facts.teeType, measurement))
    )
      throw new FirnError(
        'E_POLICY_REJECTED',
        `measurement ${measurement} is not on the on-chain allow-list`,
      );
    const kemPublicKey = hexBytes(ev.kemPublicKey, 'kemPublicKey', 32);
    // RFC 9180 §7.1.4: a low-order X25519 key makes every shared secret zero, so the sealing key
    // would be readable by anyone. Refused before the key is derived.
    assertKemRecipientKeys([kemPublicKey], 'evidence kemPublicKey');
    const key = deriveKmsSealingKey(this.#master, facts.teeType, facts.measurement, facts.platformId);
    const ctx = { nonce, measurement, platformId: bytesToHex(facts.platformId) };
    let sealed: Awaited<ReturnType<typeof hpkeSeal>>;
    try {
      sealed = await hpkeSeal(kemPublicKey, key, kmsReleaseHpkeParams(ctx));
    } finally {
      key.fill(0);
    }
    const unsigned = {
      ...ctx,
      recipient: bytesToHex(hexBytes(ev.kemPublicKey, 'kemPublicKey', 32)),
      enc: bytesToHex(sealed.enc),
      ciphertext: bytesToHex(sealed.ciphertext),
    };
    const signature = bytesToHex(signDigest(this.#identityKey, kmsResponseDigest(unsigned)));
    return { response: { v: 1, ...unsigned, signature }, facts };
  }
}
