import type { ErrorCode } from './errors.ts';

/**
 * Reason codes a verifier puts on chain with a refusal (uint16). Stable: never renumber; add at
 * the end. 0 is unused so an unset value is never a valid reason.
 */
export const REFUSAL_CODES = {
  E_EVIDENCE_MALFORMED: 1,
  E_EVIDENCE_SIGNATURE: 2,
  E_EVIDENCE_CHAIN: 3,
  E_EVIDENCE_REVOKED: 4,
  E_EVIDENCE_COLLATERAL: 5,
  E_EVIDENCE_EXPIRED: 6,
  E_EVIDENCE_NONCE: 7,
  E_EVIDENCE_BINDING: 8,
  E_EVIDENCE_TCB: 9,
  E_POLICY_REJECTED: 10,
  E_IDENTITY_MISMATCH: 11,
  E_MEASUREMENT_NOT_ALLOWED: 12,
  E_UNREACHABLE: 13,
  E_TOO_LARGE: 14,
  E_UNSUPPORTED: 15,
  E_PROOF_INVALID: 16,
  /** The evidence binds no operator, or another than the registration's (decision 1830). */
  E_EVIDENCE_OPERATOR: 17,
  /** The registered endpoint is an address verifiers never connect to (a private one, say). */
  E_ENDPOINT_FORBIDDEN: 18,
  E_OTHER: 255,
} as const;

export type RefusalName = keyof typeof REFUSAL_CODES;

export function refusalCodeOf(code: ErrorCode | string): number {
  return (REFUSAL_CODES as Record<string, number>)[code] ?? REFUSAL_CODES.E_OTHER;
}

export function refusalNameOf(n: number): string {
  for (const [k, v] of Object.entries(REFUSAL_CODES)) if (v === n) return k;
  return `unknown(${n})`;
}
