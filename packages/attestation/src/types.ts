import type { FirnError, TeeTypeName } from '@firn/core';

/**
 * TCB statuses as Intel's QVL names them, plus 'Simulated' for the simulated TEE (which no
 * production policy accepts).
 */
export type TcbStatus =
  | 'UpToDate'
  | 'SWHardeningNeeded'
  | 'ConfigurationNeeded'
  | 'ConfigurationAndSWHardeningNeeded'
  | 'OutOfDate'
  | 'OutOfDateConfigurationNeeded'
  | 'Revoked'
  | 'Simulated';

/** Inputs of a verification; time is always passed in, never read inside verification. */
export interface VerifyContext {
  /** Verification time, unix seconds. */
  now: number;
  /** Collateral for this quote (DCAP: QuoteCollateralV3 shape), when the TEE needs it. */
  collateral?: unknown;
  /** Pinned roots: DER or PEM of the trust anchors this verifier accepts. Defaults per TEE. */
  roots?: readonly Uint8Array[];
}

declare const verifiedBrand: unique symbol;

/**
 * Facts established by a verifier's cryptographic checks. Only verify* functions construct it
 * (through `markVerified`); code that releases keys or approves nodes takes only this type.
 */
export interface VerifiedEvidence {
  readonly [verifiedBrand]: true;
  teeType: TeeTypeName;
  /** One 32-byte measurement digest (core.measurementDigest). */
  measurement: Uint8Array;
  /** The raw registers, hex, by name (mrenclave, mrsigner, isvProdId, isvSvn, mrtd, rtmr0..3, ...). */
  measurements: Record<string, string>;
  /** What the vendor certifies as unique to the machine (PPID, GPU id, simulated machine id). */
  platformId: Uint8Array;
  /** The 64-byte report data from the quote. */
  reportData: Uint8Array;
  debug: boolean;
  tcbStatus: TcbStatus;
  advisoryIds: string[];
  /** TCB evaluation data number of the collateral used, when the TEE has one. */
  tcbEvaluationDataNumber?: number;
  /** Earliest nextUpdate / latest issueDate across collateral, unix seconds. */
  collateralIssuedAt?: number;
  collateralNextUpdate?: number;
  /** TEE-specific extra facts (fmspc, quoteVersion, ...) safe to print. */
  extra: Record<string, unknown>;
}

export function markVerified(facts: Omit<VerifiedEvidence, typeof verifiedBrand>): VerifiedEvidence {
  return facts as VerifiedEvidence;
}

/**
 * A TEE's verifier. parse checks structure and sizes only; verify does the cryptography against
 * pinned roots and reports facts; policy decisions are never made here (see evaluate.ts).
 */
export interface EvidenceVerifier<Parsed = unknown> {
  readonly teeType: TeeTypeName;
  parse(quote: Uint8Array): Parsed;
  verify(parsed: Parsed, ctx: VerifyContext): Promise<VerifiedEvidence>;
}

/** A reason for refusal: a stable code plus a human message. */
export interface Refusal {
  code: FirnError['code'] | string;
  message: string;
}

export type Verdict = { ok: true; facts: VerifiedEvidence } | { ok: false; reasons: Refusal[] };
