import { FirnError } from '@firn/core';
import type { Refusal, VerifiedEvidence } from '../types.ts';

/**
 * Nitro rules beyond debug (the policy's allowDebug decides PCR0..2 all zero). When a policy has
 * no nitro section the default applies: a document older than NITRO_DEFAULT_MAX_DOCUMENT_AGE_SECONDS
 * at the verification time is refused. A verifier asks for a fresh document with its own nonce, so
 * anything older is a replay or a stuck clock.
 */
export interface NitroPolicy {
  /** Largest accepted age of the document's timestamp at the verification time, seconds. */
  maxDocumentAgeSeconds?: number;
}

/** Default freshness of a Nitro document, seconds (10 minutes). */
export const NITRO_DEFAULT_MAX_DOCUMENT_AGE_SECONDS = 600;

/**
 * The NitroPolicy rules over verified Nitro facts (facts.extra.timestampMs from
 * verifyNitroDocument). A missing timestamp fails closed. Returns every reason for a no.
 */
export function nitroRefusals(facts: VerifiedEvidence, p: NitroPolicy, now: number): Refusal[] {
  const ts = facts.extra.timestampMs;
  if (typeof ts !== 'number')
    return [{ code: 'E_POLICY_REJECTED', message: 'Nitro document timestamp is missing' }];
  const max = p.maxDocumentAgeSeconds ?? NITRO_DEFAULT_MAX_DOCUMENT_AGE_SECONDS;
  const age = now - Math.floor(ts / 1000);
  if (age > max)
    return [
      {
        code: 'E_EVIDENCE_EXPIRED',
        message: `Nitro attestation document is ${age} s old, over the policy's ${max} s`,
      },
    ];
  return [];
}

/** Parse a NitroPolicy from untrusted JSON; unknown keys are refused. */
export function parseNitroPolicy(value: unknown): NitroPolicy {
  const bad = (m: string) => new FirnError('E_INVALID_INPUT', `policy: nitro ${m}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const out: NitroPolicy = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === 'maxDocumentAgeSeconds') {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
        throw bad('maxDocumentAgeSeconds must be a positive integer (seconds)');
      out.maxDocumentAgeSeconds = v;
    } else throw bad(`has unknown key ${k}`);
  }
  return out;
}
