import { FirnError } from './errors.ts';

/**
 * Size-bucket padding for sealed artifacts (`firn artifact seal --pad`,
 * docs/decisions/0872-artifact-padding.md). A sealed artifact's length otherwise reveals its plaintext length to the byte. With
 * padding, the plaintext is `body || 0x80 || 0x00…` (ISO/IEC 7816-4 bit padding) up to a bucket
 * size, and the whole padded plaintext is what the AEAD chunks encrypt and authenticate, so the
 * padding cannot be altered or stripped without the open failing. The content type gets the
 * parameter `firn-pad=padme` (the header is the AEAD's associated data), which tells the opener to
 * remove the padding. Buckets follow Padmé (Nikitin et al., "Reducing Metadata Leakage from
 * Encrypted Files and Communication with PURBs", PETS 2019): at most 12 % overhead, and a length
 * L leaks O(log log L) bits instead of log L. The smallest bucket is 4 KiB. The enclave strips the
 * padding of a job's inputs before the workload sees them (docs/decisions/1852).
 */

/** The content-type parameter that marks a padded plaintext. */
export const PAD_PARAMETER = 'firn-pad=padme';
/** The smallest padded plaintext, bytes. */
export const MIN_PADDED_BYTES = 4096;

/**
 * Padmé: round `n` up so that only the top ⌊log2 ⌊log2 n⌋⌋ + 1 bits of it may be set. At most 12 %
 * more, and a length L leaks O(log log L) bits instead of log L. Also the job channel's and the
 * first-party outputs' buckets (docs/decisions/1850, 1851).
 */
export function padmeLength(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('length must be a non-negative integer');
  if (n < 2) return n;
  const e = Math.floor(Math.log2(n));
  const s = Math.floor(Math.log2(e)) + 1;
  const lastBits = e - s;
  const mask = 2 ** lastBits;
  return Math.ceil(n / mask) * mask;
}

/**
 * The padded plaintext length for a body of `n` bytes: one marker byte, then the Padmé bucket of at
 * least `min` bytes (default MIN_PADDED_BYTES; the job channel uses its own floor, decision 1850).
 */
export function paddedLength(n: number, min = MIN_PADDED_BYTES): number {
  return padmeLength(Math.max(n + 1, min));
}

/**
 * `body || 0x80 || zeros`, `length` bytes in all (ISO/IEC 7816-4 bit padding); `length` must exceed
 * `body.length` (RangeError otherwise). The one padding routine of artifacts and the job channel.
 */
export function bitPad(body: Uint8Array, length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length <= body.length)
    throw new RangeError('the padded length must exceed the body length');
  const out = new Uint8Array(length);
  out.set(body, 0);
  out[body.length] = 0x80;
  return out;
}

/**
 * The body length of a bit-padded plaintext (the index of its 0x80 marker after the trailing zeros),
 * or -1 when there is no marker there: the caller decides what a malformed padding is.
 */
export function bitPaddedBodyLength(padded: Uint8Array): number {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  return i >= 0 && padded[i] === 0x80 ? i : -1;
}

/** `body || 0x80 || zeros` up to paddedLength(body.length). */
export function padPlaintext(body: Uint8Array): Uint8Array {
  return bitPad(body, paddedLength(body.length));
}

/** Remove bit padding; E_ARTIFACT_FORMAT when there is no 0x80 marker after the trailing zeros. */
export function unpadPlaintext(padded: Uint8Array): Uint8Array {
  const n = bitPaddedBodyLength(padded);
  if (n < 0) throw new FirnError('E_ARTIFACT_FORMAT', 'padded artifact has no padding marker');
  return padded.subarray(0, n);
}

/** The content type with the padding parameter added. */
export function paddedContentType(contentType: string): string {
  return `${contentType}; ${PAD_PARAMETER}`;
}

/** Whether a content type carries the padding parameter; returns the type without it. */
export function parsePaddedContentType(contentType: string): { padded: boolean; contentType: string } {
  const parts = contentType.split(';').map((p) => p.trim());
  const padded = parts.slice(1).some((p) => p.toLowerCase() === PAD_PARAMETER);
  return {
    padded,
    contentType: padded
      ? parts.filter((p, i) => i === 0 || p.toLowerCase() !== PAD_PARAMETER).join('; ')
      : contentType,
  };
}
