import type { ErrorCode } from '@firn/core';

/** The one table that maps stable error codes to HTTP statuses at the edge. Unknown codes are 500. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  E_INVALID_INPUT: 400,
  E_PARSE: 400,
  E_INPUT_INVALID: 400,
  E_DATA_INVALID: 400,
  E_MODEL_INVALID: 400,
  E_JOB_INVALID: 400,
  E_EVIDENCE_MALFORMED: 400,
  E_ARTIFACT_FORMAT: 400,
  E_GRANT_INVALID: 403,
  E_GRANT_EXPIRED: 403,
  E_GRANT_SCOPE: 403,
  E_POLICY_REJECTED: 403,
  // Evidence that verified badly (the key broker's refusals): the caller's evidence, not our fault.
  E_EVIDENCE_SIGNATURE: 403,
  E_EVIDENCE_CHAIN: 403,
  E_EVIDENCE_REVOKED: 403,
  E_EVIDENCE_COLLATERAL: 403,
  E_EVIDENCE_EXPIRED: 403,
  E_EVIDENCE_NONCE: 403,
  E_EVIDENCE_BINDING: 403,
  E_EVIDENCE_TCB: 403,
  E_NOT_FOUND: 404,
  E_CONFLICT: 409,
  E_TOO_LARGE: 413,
  E_UNSUPPORTED: 415,
  E_DECRYPT: 422,
  E_ARTIFACT_TAMPERED: 422,
  E_ARTIFACT_TRUNCATED: 422,
  E_ARTIFACT_REORDERED: 422,
  E_ARTIFACT_WRONG_KEY: 422,
  E_CHANNEL_SEQUENCE: 422,
  E_JOB_FAILED: 422,
  E_PROOF_INVALID: 422,
  E_ENCLAVE_UNAVAILABLE: 503,
  E_UNAVAILABLE: 503,
  E_TIMEOUT: 504,
};

export function httpStatusOf(code: string): number {
  return STATUS[code as ErrorCode] ?? 500;
}
