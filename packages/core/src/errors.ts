/**
 * Errors with a literal name and a stable string code. The code survives crossing a process or
 * HTTP boundary; the message is for humans and never carries secret material.
 */
export type ErrorCode =
  // generic input handling
  | 'E_INVALID_INPUT'
  | 'E_TOO_LARGE'
  | 'E_PARSE'
  | 'E_UNSUPPORTED'
  | 'E_NOT_FOUND'
  | 'E_CONFLICT'
  | 'E_INTERNAL'
  | 'E_TIMEOUT'
  | 'E_UNAVAILABLE'
  // node API access (who may call, how much)
  | 'E_UNAUTHENTICATED'
  | 'E_FORBIDDEN'
  | 'E_RATE_LIMITED'
  | 'E_QUOTA_EXCEEDED'
  /**
   * A node-chosen URL points where this process never sends a request: a loopback, private,
   * link-local, shared (CGNAT), multicast, reserved or cloud metadata address (EndpointForbiddenError).
   */
  | 'E_ENDPOINT_FORBIDDEN'
  /** The node's disk (or its database) is full: nothing was stored; retry later or elsewhere (HTTP 507). */
  | 'E_STORAGE_FULL'
  // attestation
  | 'E_EVIDENCE_MALFORMED'
  | 'E_EVIDENCE_SIGNATURE'
  | 'E_EVIDENCE_CHAIN'
  | 'E_EVIDENCE_REVOKED'
  | 'E_EVIDENCE_COLLATERAL'
  | 'E_EVIDENCE_EXPIRED'
  | 'E_EVIDENCE_NONCE'
  | 'E_EVIDENCE_BINDING'
  | 'E_EVIDENCE_TCB'
  /** The evidence names no operator, or another than the registry records (decision 1830). */
  | 'E_EVIDENCE_OPERATOR'
  | 'E_POLICY_REJECTED'
  // crypto and artifacts
  | 'E_CRYPTO'
  | 'E_DECRYPT'
  | 'E_ARTIFACT_TRUNCATED'
  | 'E_ARTIFACT_REORDERED'
  | 'E_ARTIFACT_TAMPERED'
  | 'E_ARTIFACT_WRONG_KEY'
  | 'E_ARTIFACT_FORMAT'
  | 'E_CHANNEL_SEQUENCE'
  | 'E_GRANT_INVALID'
  | 'E_GRANT_EXPIRED'
  | 'E_GRANT_SCOPE'
  // enclave and jobs
  | 'E_ENCLAVE_PROTOCOL'
  | 'E_ENCLAVE_UNAVAILABLE'
  | 'E_SEAL'
  | 'E_JOB_INVALID'
  | 'E_JOB_FAILED'
  | 'E_MODEL_INVALID'
  | 'E_INPUT_INVALID'
  | 'E_DATA_INVALID'
  | 'E_PROOF_INVALID'
  | 'E_IMAGE_MISMATCH'
  | 'E_RUNTIME_CRASHED'
  /** A session closed without answering any request: there is no work to prove or pay for. */
  | 'E_SESSION_EMPTY'
  /** A proved job's sealed outputs could not be fetched from its node, or do not match the proof. */
  | 'E_RESULT_UNAVAILABLE'
  // chain
  | 'E_CHAIN'
  | 'E_CHAIN_REVERTED'
  | 'E_CHAIN_DISAGREEMENT'
  /** A sent transaction was never mined: another transaction of the same account took its nonce. */
  | 'E_CHAIN_REPLACED';

export interface FirnErrorOptions {
  cause?: unknown;
  /** Small, non-secret facts for diagnostics (offsets, lengths, field names). */
  details?: Record<string, string | number | boolean | null>;
}

export class FirnError extends Error {
  override readonly name: string = 'FirnError';
  readonly code: ErrorCode;
  readonly details: Record<string, string | number | boolean | null> | undefined;

  constructor(code: ErrorCode, message: string, options: FirnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, string | number | boolean | null> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export class InvalidInputError extends FirnError {
  override readonly name = 'InvalidInputError';
  constructor(message: string, options: FirnErrorOptions = {}) {
    super('E_INVALID_INPUT', message, options);
  }
}

export class TooLargeError extends FirnError {
  override readonly name = 'TooLargeError';
  constructor(what: string, size: number, limit: number, options: FirnErrorOptions = {}) {
    super('E_TOO_LARGE', `${what} is ${size} bytes, over the limit of ${limit}`, {
      ...options,
      details: { ...options.details, size, limit },
    });
  }
}

export class ParseError extends FirnError {
  override readonly name = 'ParseError';
  constructor(message: string, options: FirnErrorOptions = {}) {
    super('E_PARSE', message, options);
  }
}

/** Type guard usable across module copies: checks the shape, not the prototype. */
export function isFirnError(e: unknown): e is FirnError {
  return (
    e instanceof FirnError ||
    (typeof e === 'object' &&
      e !== null &&
      typeof (e as { code?: unknown }).code === 'string' &&
      String((e as { code: string }).code).startsWith('E_'))
  );
}

/** Turn anything thrown into a {code, message} pair that is safe to show or send. */
export function toErrorBody(e: unknown): { code: ErrorCode; message: string } {
  if (isFirnError(e)) return { code: e.code, message: e.message };
  return { code: 'E_INTERNAL', message: 'internal error' };
}
