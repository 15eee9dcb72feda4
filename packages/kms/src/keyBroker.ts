import { randomBytes } from 'node:crypto';
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
  /** How long a nonce stays valid, seconds (default 60). */
  nonceTtlSeconds?: number;
  /** Outstanding nonces kept at most (default 10 000; the oldest are dropped first). */
  maxOutstandingNonces?: number;
}

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
  readonly #nonces = new Map<string, number>();
  /** The broker's identity address; TDs pin it. */
  readonly address: Hex;

  constructor(opts: KeyBrokerOptions) {
    assertBytes(opts.masterSecret, 'master secret', 32);
    if (!opts.policy.measurementAllowList || opts.policy.measurementAllowList.length === 0)
      throw new FirnError(
        'E_INVALID_INPUT',
        'the key broker needs a measurement allow-list (--allow-measurement); it never releases to any code',
      );
    this.#opts = opts;
    this.#master = opts.masterSecret.slice();
    this.#identityKey = deriveKmsIdentityKey(this.#master);
    this.address = addressOf(publicKeyOf(this.#identityKey));
  }

  #now(): number {
    return this.#opts.now?.() ?? Math.floor(Date.now() / 1000);
  }

  /** A fresh single-use nonce, valid for nonceTtlSeconds. */
  issueNonce(): KmsNonceResponse {
    const now = this.#now();
    for (const [n, exp] of this.#nonces) if (exp < now) this.#nonces.delete(n);
    const max = this.#opts.maxOutstandingNonces ?? 10_000;
    while (this.#nonces.size >= max) {
      const oldest = this.#nonces.keys().next().value as string;
      this.#nonces.delete(oldest);
    }
    const nonce = bytesToHex(randomBytes(KMS_NONCE_BYTES));
    const expiresAt = now + (this.#opts.nonceTtlSeconds ?? 60);
    this.#nonces.set(nonce, expiresAt);
    return { v: 1, nonce, expiresAt };
  }

  /**
   * Appraise a key request and release the key sealed to its ephemeral HPKE key.
   * Errors (FirnError codes): E_INVALID_INPUT / E_EVIDENCE_MALFORMED (shape), E_EVIDENCE_NONCE
   * (unknown, already used or expired nonce), E_EVIDENCE_BINDING (report data not a key request),
   * and the appraisal's first refusal (E_POLICY_REJECTED for a measurement off the allow-list,
   * E_EVIDENCE_SIGNATURE, E_EVIDENCE_CHAIN, E_EVIDENCE_COLLATERAL, ...), all reasons in the message.
   */
  async release(input: unknown): Promise<KeyRelease> {
    const req = parseKmsKeyRequest(input);
    const ev = req.evidence;
    const nonce = ev.nonce.toLowerCase() as Hex;
    const expiresAt = this.#nonces.get(nonce);
    // Single use: a nonce is spent by its first request, whatever the verdict.
    this.#nonces.delete(nonce);
    const now = this.#now();
    if (expiresAt === undefined)
      throw new FirnError('E_EVIDENCE_NONCE', 'unknown or already used broker nonce; ask for a fresh one');
    if (expiresAt < now) throw new FirnError('E_EVIDENCE_NONCE', 'broker nonce expired; ask for a fresh one');
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
