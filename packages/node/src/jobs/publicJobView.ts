import { type ErrorCode, type Hex, redactUrlsIn, type WorkProofJson } from '@firn/core';
import type { JobRecord, JobRecordStatus } from '../storage/jobRecord.ts';

/** One output of a job as the node lists it: role, sealed artifact id, content type, sealed size (bytes). */
export interface PublicJobOutput {
  role: string;
  artifactId: Hex;
  contentType: string;
  size: number;
}

/**
 * What the node tells anyone about a job (GET /v1/jobs/{id}, POST /v1/jobs; docs/api.md, the
 * OpenAPI `JobRecord`). Job ids are on chain and these routes need no credential, so it holds
 * only what is public or the node's own doing: the status, the error code and the host's message,
 * the outputs the proof commits to, the proof, the node's transactions and the chain times that
 * bound the claim and the challenge window. Never the requester's input artifact ids (the chain
 * holds only their commitment), the submission digest, the channel response or the node's clock
 * times (decision 1745).
 */
export interface PublicJobView {
  jobId: Hex;
  status: JobRecordStatus;
  error?: { code: ErrorCode; message: string };
  outputs?: PublicJobOutput[];
  proof?: WorkProofJson;
  /** Transactions the node sent for the job, by purpose (claim, proof, finalize, fail, ...). */
  txs?: Record<string, Hex>;
  /** Chain time (unix s) after which the claim lapses. */
  claimExpiresAt?: number;
  /** Chain time (unix s) at which the challenge window ends. */
  challengeEndsAt?: number;
}

/** The fields of PublicJobView, in the order they are answered (the OpenAPI JobRecord's properties). */
export const PUBLIC_JOB_VIEW_FIELDS = [
  'jobId',
  'status',
  'error',
  'outputs',
  'proof',
  'txs',
  'claimExpiresAt',
  'challengeEndsAt',
] as const satisfies readonly (keyof PublicJobView)[];

/** One listed output with the documented fields only (a record may carry more in future). */
export function publicJobOutput(o: PublicJobOutput): PublicJobOutput {
  return { role: o.role, artifactId: o.artifactId, contentType: o.contentType, size: o.size };
}

/**
 * The public view of a stored job record: each documented field picked by name, so a field added
 * to JobRecord stays private until it is added here, to the OpenAPI JobRecord and to docs/api.md.
 * Every route a stranger can reach answers a job with this view, never the record.
 */
export function publicJobView(r: JobRecord): PublicJobView {
  return {
    jobId: r.jobId,
    status: r.status,
    // A failure's text may quote a chain error (the node's RPC URL, whose path or query may hold
    // its API key): every URL in it is redacted, as in error answers (decision 1751).
    ...(r.error ? { error: { code: r.error.code, message: redactUrlsIn(r.error.message) } } : {}),
    ...(r.outputs ? { outputs: r.outputs.map(publicJobOutput) } : {}),
    ...(r.proof ? { proof: r.proof } : {}),
    ...(r.txs ? { txs: { ...r.txs } } : {}),
    ...(r.claimExpiresAt === undefined ? {} : { claimExpiresAt: r.claimExpiresAt }),
    ...(r.challengeEndsAt === undefined ? {} : { challengeEndsAt: r.challengeEndsAt }),
  };
}
