import {
  Aes128Gcm,
  Aes256Gcm,
  CipherSuite,
  ExportOnly,
  HkdfSha256,
  type RecipientContext,
  type SenderContext,
} from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/core';
import { assertBytes, FirnError, InvalidInputError } from '@firn/core';
import { nativeRecipientContext, nativeSenderContext, x25519PrivateKey } from './hpkeNative.ts';

/**
 * RFC 9180 HPKE, fixed to one suite: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-256-GCM. Keys cross this API as raw 32-byte arrays; the library's own key objects never leak.
 */

export const KEM_KEY_BYTES = 32;
export const KEM_ENC_BYTES = 32;
/** Largest single HPKE plaintext accepted here; bulk data goes through sealed artifacts. */
export const MAX_HPKE_PLAINTEXT_BYTES = 64 * 1024 * 1024;

export interface KemKeyPair {
  /** Raw X25519 private key, 32 bytes. */
  privateKey: Uint8Array;
  /** Raw X25519 public key, 32 bytes. */
  publicKey: Uint8Array;
}

export interface HpkeOptions {
  /** HPKE info: binds the context the key schedule is used in. */
  info?: Uint8Array;
  /** Associated data of the single message. */
  aad?: Uint8Array;
}

export interface HpkeContextOptions {
  info?: Uint8Array;
}

/** An HPKE sender context: seal messages in order and export secrets (RFC 9180 §5.2, §5.3). */
export interface HpkeSenderContext {
  /** The encapsulated key to send to the recipient, 32 bytes. */
  readonly enc: Uint8Array;
  seal(plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  export(exporterContext: Uint8Array, length: number): Promise<Uint8Array>;
}

/** An HPKE recipient context: open messages in the sender's order and export the same secrets. */
export interface HpkeRecipientContext {
  open(ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array>;
  export(exporterContext: Uint8Array, length: number): Promise<Uint8Array>;
}

/** AEADs the RFC 9180 vector tests drive; the product only ever uses 'aes-256-gcm'. */
export type HpkeAead = 'aes-256-gcm' | 'aes-128-gcm' | 'export-only';

type KemKey = Awaited<ReturnType<CipherSuite['kem']['importKey']>>;
type KemPair = Awaited<ReturnType<CipherSuite['kem']['generateKeyPair']>>;

const suites = new Map<HpkeAead, CipherSuite>();

/** The library suite for an AEAD (X25519 KEM, HKDF-SHA256 always). Internal; exported for tests. */
export function hpkeSuite(aead: HpkeAead = 'aes-256-gcm'): CipherSuite {
  let s = suites.get(aead);
  if (s === undefined) {
    s = new CipherSuite({
      // The library's WebCrypto KEM: X25519 in the runtime's native code (OpenSSL in Node), about
      // 4x the noble-based one per encapsulation here; it refuses low-order points too (hpke.test.ts).
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead:
        aead === 'aes-256-gcm'
          ? new Aes256Gcm()
          : aead === 'aes-128-gcm'
            ? new Aes128Gcm()
            : new ExportOnly(),
    });
    suites.set(aead, s);
  }
  return s;
}

function copy(b: ArrayBuffer | Uint8Array): Uint8Array {
  return b instanceof Uint8Array ? b.slice() : new Uint8Array(b.slice(0));
}

function decryptError(cause?: unknown): FirnError {
  // Never say which step failed or echo inputs: one opaque failure for any bad ciphertext or key.
  return new FirnError('E_DECRYPT', 'decryption failed', cause === undefined ? {} : { cause });
}

async function importPrivateKey(suite: CipherSuite, privateKey: Uint8Array): Promise<KemKey> {
  assertBytes(privateKey, 'KEM private key', KEM_KEY_BYTES);
  return suite.kem.importKey('raw', privateKey.slice().buffer, false);
}

async function importPublicKey(suite: CipherSuite, publicKey: Uint8Array): Promise<KemKey> {
  assertBytes(publicKey, 'KEM public key', KEM_KEY_BYTES);
  return suite.kem.importKey('raw', publicKey.slice().buffer, true);
}

async function exportPair(suite: CipherSuite, kp: KemPair): Promise<KemKeyPair> {
  const privateKey = copy(await suite.kem.serializePrivateKey(kp.privateKey));
  const publicKey = copy(await suite.kem.serializePublicKey(kp.publicKey));
  if (privateKey.length !== KEM_KEY_BYTES || publicKey.length !== KEM_KEY_BYTES)
    throw new FirnError('E_CRYPTO', 'unexpected KEM key size');
  return { privateKey, publicKey };
}

/** A fresh random X25519 key pair for HPKE. */
export async function generateKemKeyPair(): Promise<KemKeyPair> {
  const suite = hpkeSuite();
  return exportPair(suite, await suite.kem.generateKeyPair());
}

/** RFC 9180 DeriveKeyPair: the same ikm gives the same key pair (used for vectors and sealing). */
export async function deriveKemKeyPair(ikm: Uint8Array): Promise<KemKeyPair> {
  assertBytes(ikm, 'ikm');
  if (ikm.length < 32) throw new InvalidInputError('ikm must be at least 32 bytes');
  const suite = hpkeSuite();
  return exportPair(suite, await suite.kem.deriveKeyPair(ikm.slice().buffer));
}

/**
 * The X25519 public key (32 bytes) of a raw 32-byte private key (RFC 7748 §6.1, the scalar
 * clamped as the RFC says). node:crypto (OpenSSL) does the scalar multiplication: about 40x the
 * speed of the pure-JS one, which matters because every grant and artifact open asks for it; the
 * key is imported as a raw JWK (not through OpenSSL's PKCS#8 decoder, ~0.5 ms) and the result is
 * kept for the next call with the same key.
 * Throws InvalidInputError for a key that is not 32 bytes.
 */
export function kemPublicKeyOf(privateKey: Uint8Array): Uint8Array {
  assertBytes(privateKey, 'KEM private key', KEM_KEY_BYTES);
  // Raw-key import, and kept for the next call with the same key (hpkeNative.ts).
  return x25519PrivateKey(privateKey).publicKey.slice();
}

/** Options the vector tests need beyond base mode; the product API never sets them. */
export interface HpkeSenderParams {
  info?: Uint8Array;
  /** Derive the ephemeral key from this ikm instead of randomness (test vectors only). */
  ephemeralIkm?: Uint8Array;
  psk?: { id: Uint8Array; key: Uint8Array };
  senderPrivateKey?: Uint8Array;
}

export interface HpkeRecipientParams {
  info?: Uint8Array;
  psk?: { id: Uint8Array; key: Uint8Array };
  senderPublicKey?: Uint8Array;
}

function wrapSender(ctx: SenderContext): HpkeSenderContext {
  return {
    enc: copy(ctx.enc),
    async seal(plaintext, aad) {
      assertBytes(plaintext, 'plaintext');
      if (plaintext.length > MAX_HPKE_PLAINTEXT_BYTES)
        throw new InvalidInputError('plaintext too large for one HPKE message');
      try {
        return copy(
          await ctx.seal(plaintext.slice().buffer, aad === undefined ? undefined : aad.slice().buffer),
        );
      } catch (e) {
        throw new FirnError('E_CRYPTO', 'HPKE seal failed', { cause: e });
      }
    },
    export: (exporterContext, length) => exportFrom(ctx, exporterContext, length),
  };
}

function wrapRecipient(ctx: RecipientContext): HpkeRecipientContext {
  return {
    async open(ciphertext, aad) {
      assertBytes(ciphertext, 'ciphertext');
      try {
        return copy(
          await ctx.open(ciphertext.slice().buffer, aad === undefined ? undefined : aad.slice().buffer),
        );
      } catch (e) {
        throw decryptError(e);
      }
    },
    export: (exporterContext, length) => exportFrom(ctx, exporterContext, length),
  };
}

async function exportFrom(
  ctx: SenderContext | RecipientContext,
  exporterContext: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  assertBytes(exporterContext, 'exporter context');
  // RFC 9180 §5.3: L is capped by the KDF (255 * Nh for HKDF-SHA256).
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32)
    throw new InvalidInputError('export length must be 1..8160');
  try {
    return copy(await ctx.export(exporterContext.slice().buffer, length));
  } catch (e) {
    throw new FirnError('E_CRYPTO', 'HPKE export failed', { cause: e });
  }
}

/** Build a sender context on a given suite; internal entry point shared with the vector tests. */
export async function createSenderContextWith(
  suite: CipherSuite,
  recipientPublicKey: Uint8Array,
  params: HpkeSenderParams = {},
): Promise<HpkeSenderContext> {
  const recipient = await importPublicKey(suite, recipientPublicKey).catch((e: unknown) => {
    throw new InvalidInputError('invalid KEM public key', { cause: e });
  });
  const p: Parameters<CipherSuite['createSenderContext']>[0] = { recipientPublicKey: recipient };
  if (params.info !== undefined) p.info = assertBytes(params.info, 'info').slice().buffer;
  if (params.ephemeralIkm !== undefined)
    p.ekm = await suite.kem.deriveKeyPair(params.ephemeralIkm.slice().buffer);
  if (params.psk !== undefined)
    p.psk = { id: params.psk.id.slice().buffer, key: params.psk.key.slice().buffer };
  if (params.senderPrivateKey !== undefined) {
    const sk = await importPrivateKey(suite, params.senderPrivateKey);
    const pk = await importPublicKey(suite, kemPublicKeyOf(params.senderPrivateKey));
    p.senderKey = { privateKey: sk, publicKey: pk };
  }
  try {
    return wrapSender(await suite.createSenderContext(p));
  } catch (e) {
    // A low-order recipient key makes the DH output zero; the KEM refuses it (RFC 9180 §7.1.4).
    throw new FirnError('E_CRYPTO', 'HPKE encapsulation failed', { cause: e });
  }
}

/** Build a recipient context on a given suite; internal entry point shared with the vector tests. */
export async function createRecipientContextWith(
  suite: CipherSuite,
  recipientPrivateKey: Uint8Array,
  enc: Uint8Array,
  params: HpkeRecipientParams = {},
): Promise<HpkeRecipientContext> {
  const sk = await importPrivateKey(suite, recipientPrivateKey);
  assertBytes(enc, 'enc');
  if (enc.length !== KEM_ENC_BYTES) throw decryptError();
  const p: Parameters<CipherSuite['createRecipientContext']>[0] = {
    recipientKey: {
      privateKey: sk,
      publicKey: await importPublicKey(suite, kemPublicKeyOf(recipientPrivateKey)),
    },
    enc: enc.slice().buffer,
  };
  if (params.info !== undefined) p.info = assertBytes(params.info, 'info').slice().buffer;
  if (params.psk !== undefined)
    p.psk = { id: params.psk.id.slice().buffer, key: params.psk.key.slice().buffer };
  if (params.senderPublicKey !== undefined)
    p.senderPublicKey = await importPublicKey(suite, params.senderPublicKey);
  try {
    return wrapRecipient(await suite.createRecipientContext(p));
  } catch (e) {
    // A low-order or otherwise bad enc is indistinguishable, to the caller, from a wrong key.
    throw decryptError(e);
  }
}

/**
 * A base-mode sender context to a recipient's KEM public key (our suite), on node:crypto
 * (hpkeNative.ts: the same bytes as the library's, without its WebCrypto round trips).
 * Raises InvalidInputError for a key that is not 32 bytes, E_CRYPTO for a low-order one.
 */
export async function createSenderContext(
  recipientPublicKey: Uint8Array,
  opts: HpkeContextOptions = {},
): Promise<HpkeSenderContext> {
  assertBytes(recipientPublicKey, 'KEM public key', KEM_KEY_BYTES);
  const info = opts.info === undefined ? new Uint8Array(0) : assertBytes(opts.info, 'info');
  let ctx: ReturnType<typeof nativeSenderContext>;
  try {
    ctx = nativeSenderContext(recipientPublicKey, info);
  } catch (e) {
    // A low-order recipient key makes the DH output zero; the KEM refuses it (RFC 9180 §7.1.4).
    throw new FirnError('E_CRYPTO', 'HPKE encapsulation failed', { cause: e });
  }
  return {
    enc: ctx.enc.slice(),
    async seal(plaintext, aad) {
      assertBytes(plaintext, 'plaintext');
      if (plaintext.length > MAX_HPKE_PLAINTEXT_BYTES)
        throw new InvalidInputError('plaintext too large for one HPKE message');
      if (aad !== undefined) assertBytes(aad, 'aad');
      try {
        return await ctx.seal(plaintext, aad);
      } catch (e) {
        throw new FirnError('E_CRYPTO', 'HPKE seal failed', { cause: e });
      }
    },
    export: (exporterContext, length) => ctx.export(exporterContext, length),
  };
}

/**
 * A base-mode recipient context for an enc produced by createSenderContext (our suite), on
 * node:crypto (hpkeNative.ts). Any bad `enc` or ciphertext is E_DECRYPT, as a wrong key is.
 */
export async function createRecipientContext(
  recipientPrivateKey: Uint8Array,
  enc: Uint8Array,
  opts: HpkeContextOptions = {},
): Promise<HpkeRecipientContext> {
  assertBytes(recipientPrivateKey, 'KEM private key', KEM_KEY_BYTES);
  assertBytes(enc, 'enc');
  const info = opts.info === undefined ? new Uint8Array(0) : assertBytes(opts.info, 'info');
  let ctx: ReturnType<typeof nativeRecipientContext>;
  try {
    ctx = nativeRecipientContext(recipientPrivateKey, enc, info);
  } catch (e) {
    throw decryptError(e);
  }
  return {
    async open(ciphertext, aad) {
      assertBytes(ciphertext, 'ciphertext');
      if (aad !== undefined) assertBytes(aad, 'aad');
      try {
        return await ctx.open(ciphertext, aad);
      } catch (e) {
        throw decryptError(e);
      }
    },
    export: (exporterContext, length) => ctx.export(exporterContext, length),
  };
}

/** Single-shot HPKE seal (RFC 9180 §6.1) to a recipient's KEM public key. */
export async function hpkeSeal(
  recipientPublicKey: Uint8Array,
  plaintext: Uint8Array,
  opts: HpkeOptions = {},
): Promise<{ enc: Uint8Array; ciphertext: Uint8Array }> {
  const ctx = await createSenderContext(
    recipientPublicKey,
    opts.info === undefined ? {} : { info: opts.info },
  );
  return { enc: ctx.enc, ciphertext: await ctx.seal(plaintext, opts.aad) };
}

/**
 * Single-shot HPKE open. Proves the ciphertext was produced for this key with this info and aad
 * and was not altered; it does not say who sent it (base mode is unauthenticated).
 */
export async function hpkeOpen(
  recipientPrivateKey: Uint8Array,
  enc: Uint8Array,
  ciphertext: Uint8Array,
  opts: HpkeOptions = {},
): Promise<Uint8Array> {
  const ctx = await createRecipientContext(
    recipientPrivateKey,
    enc,
    opts.info === undefined ? {} : { info: opts.info },
  );
  return ctx.open(ciphertext, opts.aad);
}
