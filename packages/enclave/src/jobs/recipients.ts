import { bytesToHex, FirnError, type Hex, hexBytes } from '@firn/core';
import { isLowOrderX25519PublicKey } from '@firn/crypto';

/**
 * The params key that lists a job's extra output recipients (docs/decisions/1101-multi-owner-jobs.md):
 * an array of 32-byte X25519 public keys, 0x hex. Being in params, it is covered by the workload
 * hash posted on chain and by every owner's grant, so a requester cannot drop a recipient after
 * the owners granted.
 */
export const RECIPIENTS_PARAM = 'firn.recipients';
/** The sealed-artifact header holds at most 16 wrapped keys: the requester's and 15 more. */
export const MAX_EXTRA_RECIPIENTS = 15;

/**
 * Every KEM public key a job's outputs are sealed to: `resultRecipient` first, then the keys of
 * params["firn.recipients"] that differ from it (in order, duplicates dropped). Raises
 * E_JOB_INVALID when the list is not an array of at most 15 keys of 32 bytes, or when a key (the
 * resultRecipient, or the list's entry at some index, named in the message) is a low-order X25519
 * point: any HPKE to it has the all-zero shared secret RFC 9180 §7.1.4 refuses, so the job is
 * refused here, before any input is opened or any output sealed.
 */
export function jobRecipients(resultRecipient: Hex, params: Readonly<Record<string, unknown>>): Uint8Array[] {
  const first = hexBytes(resultRecipient, 'resultRecipient', 32);
  if (isLowOrderX25519PublicKey(first))
    throw new FirnError('E_JOB_INVALID', 'resultRecipient is a low-order X25519 point, not a KEM public key');
  if (!Object.hasOwn(params, RECIPIENTS_PARAM)) return [first];
  const list = params[RECIPIENTS_PARAM];
  if (!Array.isArray(list) || list.length > MAX_EXTRA_RECIPIENTS)
    throw new FirnError(
      'E_JOB_INVALID',
      `params["${RECIPIENTS_PARAM}"] must be an array of at most ${MAX_EXTRA_RECIPIENTS} KEM public keys`,
    );
  const seen = new Set([bytesToHex(first)]);
  const out = [first];
  for (const [i, k] of list.entries()) {
    let key: Uint8Array;
    try {
      key = hexBytes(k, 'recipient', 32);
    } catch {
      throw new FirnError(
        'E_JOB_INVALID',
        `params["${RECIPIENTS_PARAM}"] holds a key that is not 32 bytes of hex`,
      );
    }
    if (isLowOrderX25519PublicKey(key))
      throw new FirnError(
        'E_JOB_INVALID',
        `params["${RECIPIENTS_PARAM}"][${i}] is a low-order X25519 point, not a KEM public key`,
      );
    const h = bytesToHex(key);
    if (seen.has(h)) continue;
    seen.add(h);
    out.push(key);
  }
  return out;
}
