import type { ErrorCode, Hex, WorkProofJson } from '@firn/core';

/**
 * Every state a job record can be in, in lifecycle order: the one source the type, the OpenAPI
 * document (openapi.ts JobRecord.status) and docs/api.md follow. `accepted`: admitted, waiting for
 * an enclave slot (not claimed); `claimed`: claimed on chain, not yet in the enclave; `running`:
 * claimed and in the enclave; `proving`: the enclave's proof is kept here and is being submitted
 * (the chain may be down); `proved`: the chain took the proof (challenge window); `finalized`:
 * paid out; `failed`: over without a proof.
 */
export const JOB_RECORD_STATUSES = [
  'accepted',
  'claimed',
  'running',
  'proving',
  'proved',
  'finalized',
  'failed',
] as const;

/** A job's state on this node (one of JOB_RECORD_STATUSES). */
export type JobRecordStatus = (typeof JOB_RECORD_STATUSES)[number];

/** What the host records about a job: public facts and ciphertext references only. */
export interface JobRecord {
  jobId: Hex;
  status: JobRecordStatus;
  inputs: Hex[];
  createdAt: number;
  updatedAt: number;
  error?: { code: ErrorCode; message: string };
  outputs?: { role: string; artifactId: Hex; contentType: string; size: number }[];
  proof?: WorkProofJson;
  /** The enclave's channel response (base64 ciphertext). */
  response?: string;
  /** Inference sessions: the preimage of the proof's outputCommitment (served with the result). */
  sessionOpening?: { salt: Hex; count: string; requestsHash: Hex; responsesHash: Hex };
  txs?: Record<string, Hex>;
  /** SHA-256 of the submission (enc, ciphertext, inputs): a retried identical submission is the same job. */
  requestDigest?: Hex;
  /** Chain time (unix s) after which the claim lapses; a kept proof must be on chain before it. */
  claimExpiresAt?: number;
  /** Chain time (unix s) at which the challenge window ends (finalize after it). */
  challengeEndsAt?: number;
}
