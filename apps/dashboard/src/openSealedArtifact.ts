import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { FirnError } from '../../../packages/core/src/errors.ts';

/**
 * Open a firn sealed artifact in the browser, with the requester's X25519 KEM private key, using
 * only WebCrypto, @hpke/core and noble: the key never leaves the page. Follows the format of
 * docs/sealed-artifacts.md (packages/crypto/src/artifact: header "FIRNSA" v1 suite 1, HPKE-wrapped
 * data key committed by the header, AES-256-GCM chunks with nonce = prefix(7) || counter(4, BE) ||
 * last(1) and the tagged header hash as associated data).
 *
 * Proves: every byte returned was sealed under this header with the data key wrapped to this KEM
 * key, in order, and nothing was cut off or appended. Does not prove who sealed it (the Work Proof
 * and its output commitment do that, over the artifact id).
 *
 * Errors (FirnError codes): E_TOO_LARGE over `maxBytes`; E_ARTIFACT_FORMAT (not a sealed artifact,
 * fields out of range); E_ARTIFACT_TRUNCATED; E_ARTIFACT_WRONG_KEY (no recipient entry opens);
 * E_ARTIFACT_TAMPERED (a chunk or the key commitment fails).
 */

const MAGIC = [0x46, 0x49, 0x52, 0x4e, 0x53, 0x41]; // "FIRNSA"
const FIXED_HEADER_BYTES = 54;
const MAX_CONTENT_TYPE_BYTES = 128;
const MAX_RECIPIENTS = 16;
const RECIPIENT_BYTES = 32 + 32 + 48;
const MIN_CHUNK = 4 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;
const TAG_BYTES = 16;
/** Largest artifact the page opens in memory (the dashboard shows metrics, not models). */
export const MAX_BROWSER_ARTIFACT_BYTES = 64 * 1024 * 1024;

// Tags from packages/core/src/tags.ts (one list; the strings are the wire contract).
const TAG_SEALED_ARTIFACT = 'firn/sealed-artifact/v1';
const TAG_KEY_WRAP = 'firn/artifact-key-wrap/v1';
const TAG_KEM_KEY_ID = 'firn/kem-key-id/v1';
const PAD_PARAMETER = 'firn-pad=padme';

const enc = new TextEncoder();

/** taggedSha256 of packages/core/src/hash.ts: SHA-256 over (u32be length || bytes) of the tag and each field. */
export function taggedSha256Browser(tag: string, ...fields: Uint8Array[]): Uint8Array {
  const parts = [enc.encode(tag), ...fields];
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const p of parts) {
    dv.setUint32(o, p.length, false);
    out.set(p, o + 4);
    o += 4 + p.length;
  }
  return sha256(out);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

function fail(code: FirnError['code'], message: string): FirnError {
  return new FirnError(code, message);
}

/** The header fields the page needs; `bytes` is the exact header, `aad` its tagged hash. */
export interface BrowserArtifactHeader {
  chunkSize: number;
  noncePrefix: Uint8Array;
  keyCommitment: Uint8Array;
  contentType: string;
  recipients: { keyId: Uint8Array; enc: Uint8Array; wrappedKey: Uint8Array }[];
  length: number;
  aad: Uint8Array;
}

/** Parse the header (size-capped, no key used); E_ARTIFACT_FORMAT / E_ARTIFACT_TRUNCATED. */
export function parseBrowserArtifactHeader(b: Uint8Array): BrowserArtifactHeader {
  if (b.length < 10) throw fail('E_ARTIFACT_TRUNCATED', 'artifact ends inside the header');
  for (let i = 0; i < MAGIC.length; i++)
    if (b[i] !== MAGIC[i]) throw fail('E_ARTIFACT_FORMAT', 'not a sealed artifact (bad magic)');
  if (b[6] !== 1 || b[7] !== 1) throw fail('E_ARTIFACT_FORMAT', 'unsupported artifact version or suite');
  const len = (b[8]! << 8) | b[9]!;
  const maxLen = FIXED_HEADER_BYTES + MAX_CONTENT_TYPE_BYTES + 1 + MAX_RECIPIENTS * RECIPIENT_BYTES;
  if (len < FIXED_HEADER_BYTES + 1 || len > maxLen)
    throw fail('E_ARTIFACT_FORMAT', 'header length out of range');
  if (b.length < len) throw fail('E_ARTIFACT_TRUNCATED', 'artifact ends inside the header');
  const h = b.subarray(0, len);
  const chunkSize = new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(10, false);
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK)
    throw fail('E_ARTIFACT_FORMAT', 'chunk size out of range');
  const ctLen = h[53]!;
  if (ctLen === 0 || ctLen > MAX_CONTENT_TYPE_BYTES || 54 + ctLen + 1 > len)
    throw fail('E_ARTIFACT_FORMAT', 'content type length out of range');
  const contentType = String.fromCharCode(...h.subarray(54, 54 + ctLen));
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(contentType))
    throw fail('E_ARTIFACT_FORMAT', 'content type not printable ASCII');
  const count = h[54 + ctLen]!;
  if (count > MAX_RECIPIENTS || len !== FIXED_HEADER_BYTES + ctLen + 1 + count * RECIPIENT_BYTES)
    throw fail('E_ARTIFACT_FORMAT', 'header length inconsistent');
  const recipients: BrowserArtifactHeader['recipients'] = [];
  for (let i = 0, o = 55 + ctLen; i < count; i++, o += RECIPIENT_BYTES)
    recipients.push({
      keyId: h.subarray(o, o + 32),
      enc: h.subarray(o + 32, o + 64),
      wrappedKey: h.subarray(o + 64, o + RECIPIENT_BYTES),
    });
  return {
    chunkSize,
    noncePrefix: h.subarray(14, 21),
    keyCommitment: h.subarray(21, 53),
    contentType,
    recipients,
    length: len,
    aad: taggedSha256Browser(TAG_SEALED_ARTIFACT, enc.encode('header'), h),
  };
}

/** The recipient key id of an X25519 KEM public key (a lookup hint in the header). */
export function kemKeyIdOf(kemPublicKey: Uint8Array): Uint8Array {
  return taggedSha256Browser(TAG_KEM_KEY_ID, kemPublicKey);
}

/** Whether the header names this KEM private key as a recipient (cheap: no decryption). */
export function isAddressedTo(header: BrowserArtifactHeader, kemPrivateKey: Uint8Array): boolean {
  const id = kemKeyIdOf(x25519.getPublicKey(kemPrivateKey));
  return header.recipients.some((r) => equal(r.keyId, id));
}

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
});

async function unwrapDataKey(header: BrowserArtifactHeader, kemPrivateKey: Uint8Array): Promise<Uint8Array> {
  const recipientKey = await suite.kem.importKey('raw', kemPrivateKey.slice().buffer, false);
  const myId = kemKeyIdOf(x25519.getPublicKey(kemPrivateKey));
  for (const r of header.recipients) {
    let key: Uint8Array;
    try {
      const ctx = await suite.createRecipientContext({
        recipientKey,
        enc: r.enc.slice().buffer,
        info: enc.encode(TAG_KEY_WRAP).buffer,
      });
      key = new Uint8Array(await ctx.open(r.wrappedKey.slice().buffer));
    } catch {
      continue;
    }
    if (
      key.length !== 32 ||
      !equal(taggedSha256Browser(TAG_SEALED_ARTIFACT, enc.encode('key'), key), header.keyCommitment)
    )
      throw fail('E_ARTIFACT_TAMPERED', 'wrapped data key does not match the key commitment');
    return key;
  }
  if (header.recipients.some((r) => equal(r.keyId, myId)))
    throw fail('E_ARTIFACT_TAMPERED', 'recipient entry for this key does not open');
  throw fail('E_ARTIFACT_WRONG_KEY', 'no recipient entry opens with this key');
}

/** A copy on its own ArrayBuffer (what WebCrypto's BufferSource takes). */
const own = (u: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(u);

function nonceOf(prefix: Uint8Array, counter: number, last: boolean): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  n.set(prefix, 0);
  new DataView(n.buffer).setUint32(7, counter, false);
  n[11] = last ? 1 : 0;
  return n;
}

/**
 * Open a whole sealed artifact held in memory. Returns its content type (without the padding
 * parameter) and plaintext (without padding). See the module comment for what it proves and raises.
 */
export async function openSealedArtifact(
  bytes: Uint8Array,
  kemPrivateKey: Uint8Array,
  maxBytes = MAX_BROWSER_ARTIFACT_BYTES,
): Promise<{ contentType: string; bytes: Uint8Array }> {
  if (bytes.length > maxBytes)
    throw fail('E_TOO_LARGE', `artifact is ${bytes.length} bytes, over ${maxBytes}`);
  if (kemPrivateKey.length !== 32) throw new FirnError('E_INVALID_INPUT', 'KEM private key must be 32 bytes');
  const header = parseBrowserArtifactHeader(bytes);
  const dataKey = await unwrapDataKey(header, kemPrivateKey);
  const key = await crypto.subtle.importKey('raw', own(dataKey), 'AES-GCM', false, ['decrypt']);
  dataKey.fill(0);
  const block = header.chunkSize + TAG_BYTES;
  const body = bytes.subarray(header.length);
  if (body.length === 0) throw fail('E_ARTIFACT_TRUNCATED', 'artifact ends before its last chunk');
  const parts: Uint8Array[] = [];
  for (let counter = 0, o = 0; o < body.length; counter++, o += block) {
    const chunk = body.subarray(o, o + block);
    const last = o + block >= body.length;
    if (chunk.length < TAG_BYTES) throw fail('E_ARTIFACT_TRUNCATED', 'artifact ends inside a chunk');
    try {
      parts.push(
        new Uint8Array(
          await crypto.subtle.decrypt(
            {
              name: 'AES-GCM',
              iv: nonceOf(header.noncePrefix, counter, last),
              additionalData: own(header.aad),
              tagLength: 128,
            },
            key,
            own(chunk),
          ),
        ),
      );
    } catch {
      // A non-last chunk at the end is a cut at a chunk boundary; anything else was altered or moved.
      const asInner = last
        ? await crypto.subtle
            .decrypt(
              {
                name: 'AES-GCM',
                iv: nonceOf(header.noncePrefix, counter, false),
                additionalData: own(header.aad),
                tagLength: 128,
              },
              key,
              own(chunk),
            )
            .then(
              () => true,
              () => false,
            )
        : false;
      if (asInner) throw fail('E_ARTIFACT_TRUNCATED', 'artifact ends before its last chunk');
      throw fail('E_ARTIFACT_TAMPERED', `chunk ${counter} failed authentication`);
    }
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  const params = header.contentType.split(';').map((p) => p.trim());
  if (!params.slice(1).some((p) => p.toLowerCase() === PAD_PARAMETER))
    return { contentType: header.contentType, bytes: out };
  let i = out.length - 1;
  while (i >= 0 && out[i] === 0) i--;
  if (i < 0 || out[i] !== 0x80) throw fail('E_ARTIFACT_FORMAT', 'padded artifact has no padding marker');
  return {
    contentType: params.filter((p, k) => k === 0 || p.toLowerCase() !== PAD_PARAMETER).join('; '),
    bytes: out.subarray(0, i),
  };
}
