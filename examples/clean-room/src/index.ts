import { defineApp, FirnError } from '@firn/app';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * A two-party data clean room. Two owners each seal a list of IDs (one per line: e-mail hashes,
 * customer numbers...) and grant it to this enclave for one job; the job's result, sealed to both
 * owners, is the size of the overlap of the two lists, and nothing else: no ID, no list size.
 * The enclave also signs a salted commitment to the result onto the data ledger, so either party
 * can later prove to a third party what the clean room computed, while the public record reveals
 * nothing (the overlap size alone could be guessed from an unsalted hash).
 *
 * Guard against membership probes: a party that submits one ID learns whether the other list holds
 * it. So both lists must hold at least `minIds` distinct IDs (param, default 10, at least 2). The
 * param is in the workload hash that both owners' grants are scoped to, so both agree on it.
 *
 * What the host and the chain see (docs/decisions/1769-app-public-fields.md): the signed
 * commitment (salted), `workUnits` (the two lists' byte sizes, which their sealed files show
 * anyway: never the ID counts, which would hand each party the other's count), the output's role,
 * content type and size (the result is padded to RESULT_BYTES so its length does not tell the
 * overlap's number of digits), and the error code of a refused job.
 */

/** Largest list read, bytes; and the most IDs and the longest ID accepted. */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;
export const MAX_IDS = 1_000_000;
export const MAX_ID_LENGTH = 256;
const DOMAIN = new TextEncoder().encode('firn-example/clean-room/overlap/v1');
/** The result's size in bytes, whatever the overlap: JSON padded with spaces, then a newline. */
export const RESULT_BYTES = 192;

/** The result's bytes: its JSON padded with spaces to RESULT_BYTES - 1, then "\n". */
export function resultBytes(result: { overlap: number; salt: string; commitment: string }): Uint8Array {
  const json = JSON.stringify(result);
  return new TextEncoder().encode(`${json.padEnd(RESULT_BYTES - 1, ' ')}\n`);
}

/** Distinct IDs of a list: one per line, trimmed, lowercased, empty lines dropped. Raises E_INPUT_INVALID. */
export function parseIds(bytes: Uint8Array, role: string): Set<string> {
  if (bytes.length > MAX_LIST_BYTES)
    throw new FirnError('E_INPUT_INVALID', `list ${role} is over ${MAX_LIST_BYTES} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FirnError('E_INPUT_INVALID', `list ${role} is not UTF-8 text (one ID per line)`);
  }
  const ids = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const id = line.trim().toLowerCase();
    if (id.length === 0) continue;
    // The message is sealed to the requester; it names the line number, never the ID.
    if (id.length > MAX_ID_LENGTH)
      throw new FirnError(
        'E_INPUT_INVALID',
        `list ${role} has an ID longer than ${MAX_ID_LENGTH} characters`,
      );
    ids.add(id);
    if (ids.size > MAX_IDS)
      throw new FirnError('E_INPUT_INVALID', `list ${role} has more than ${MAX_IDS} IDs`);
  }
  return ids;
}

/** The salted commitment the enclave signs: SHA-256(domain || salt || overlap as 8 bytes big-endian). */
export function overlapCommitment(overlap: number, salt: Uint8Array): Uint8Array {
  const n = new Uint8Array(8);
  new DataView(n.buffer).setBigUint64(0, BigInt(overlap));
  const m = new Uint8Array(DOMAIN.length + salt.length + 8);
  m.set(DOMAIN, 0);
  m.set(salt, DOMAIN.length);
  m.set(n, DOMAIN.length + salt.length);
  return sha256(m);
}

const hex = (b: Uint8Array) => `0x${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;

export default defineApp({
  name: 'clean-room',
  version: '1.0.0',
  workloads: {
    /** Inputs `left` and `right` (ID lists); output `result` = {overlap, salt, commitment}. */
    async overlap(ctx) {
      const minIds = ctx.params.minIds ?? 10;
      if (typeof minIds !== 'number' || !Number.isInteger(minIds) || minIds < 2 || minIds > MAX_IDS)
        throw new FirnError('E_INPUT_INVALID', `param minIds must be an integer from 2 to ${MAX_IDS}`);
      const leftBytes = ctx.input('left');
      const rightBytes = ctx.input('right');
      const left = parseIds(leftBytes, 'left');
      const right = parseIds(rightBytes, 'right');
      for (const [role, ids] of [
        ['left', left],
        ['right', right],
      ] as const)
        if (ids.size < minIds)
          throw new FirnError(
            'E_INPUT_INVALID',
            `list ${role} has fewer than minIds = ${minIds} distinct IDs`,
          );
      ctx.progress({ stage: 'matching' });
      const [small, large] = left.size <= right.size ? [left, right] : [right, left];
      let overlap = 0;
      for (const id of small) if (large.has(id)) overlap++;
      const salt = ctx.random(32);
      const commitment = overlapCommitment(overlap, salt);
      await ctx.signData(commitment, { topic: 'clean-room.overlap' });
      const result = { overlap, salt: hex(salt), commitment: hex(commitment) };
      return {
        outputs: [
          {
            role: 'result',
            contentType: 'application/json',
            bytes: resultBytes(result),
          },
        ],
        // Public (Work Proof, chain): the lists' byte sizes, never a count read from them.
        workUnits: BigInt(leftBytes.length + rightBytes.length),
      };
    },
  },
});
