/**
 * A job or session submission (POST /v1/jobs, POST /v1/sessions): its parser, its digest and the
 * on-chain failure reason. Shared by the job and session services, so neither imports the other's
 * module for these.
 */
import { createHash } from 'node:crypto';
import { FirnError, type Hex, hexBytes, MAX_JOB_INPUTS, parseOutputBound } from '@firn/core';
import { parseArtifactId } from '../storage/artifactStore.ts';

/** Largest job or session submission body (JSON), bytes. */
export const MAX_JOB_BODY_BYTES = 2 * 1024 * 1024;

/**
 * SHA-256 over a submission's enc, ciphertext, inputs and declared output bound (when it has one):
 * what makes a retried submission "the same".
 */
export function submissionDigest(
  body: Pick<SubmitBody, 'enc' | 'ciphertext' | 'inputs' | 'maxOutputBytes'>,
): Hex {
  const h = createHash('sha256');
  h.update('firn/job-submission/v1\0');
  h.update(body.enc.toLowerCase());
  h.update('\0');
  h.update(body.ciphertext);
  for (const i of body.inputs) h.update(`\0${i.toLowerCase()}`);
  if (body.maxOutputBytes !== undefined) h.update(`\0maxOutputBytes=${body.maxOutputBytes}`);
  return `0x${h.digest('hex')}`;
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** bytes32 reason for failJob: the stable error code in ASCII, right-padded with zeros. */
export function failureReason(code: string): Hex {
  const b = Buffer.alloc(32);
  b.write(code.slice(0, 32), 'ascii');
  return `0x${b.toString('hex')}`;
}

/** Decode a failJob reason back to the error code. */
export function failureCodeOf(reason: Hex): string {
  return Buffer.from(reason.slice(2), 'hex').toString('ascii').replace(/\0+$/, '');
}

export interface SubmitBody {
  jobId: Hex;
  enc: Hex;
  ciphertext: string;
  inputs: Hex[];
  /**
   * The job's declared output bound, bytes (signed with the submission; the enclave refuses a
   * request whose sealed bound differs). Absent: one storage block is reserved (decision 1690).
   */
  maxOutputBytes?: number;
}

/**
 * Parse a POST /v1/jobs or POST /v1/sessions body: jobId, enc (32 bytes hex), ciphertext (base64,
 * at most MAX_JOB_BODY_BYTES), 1..MAX_JOB_INPUTS input ids, and an optional `maxOutputBytes`
 * (parseOutputBound). Raises E_INVALID_INPUT naming the field.
 */
export function parseSubmitBody(o: unknown): SubmitBody {
  const r = o as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null) throw new FirnError('E_INVALID_INPUT', 'body must be an object');
  const jobId = parseArtifactId(r.jobId) as Hex;
  hexBytes(r.enc, 'enc', 32);
  if (
    typeof r.ciphertext !== 'string' ||
    !B64_RE.test(r.ciphertext) ||
    r.ciphertext.length > MAX_JOB_BODY_BYTES
  )
    throw new FirnError('E_INVALID_INPUT', 'ciphertext must be base64');
  if (!Array.isArray(r.inputs) || r.inputs.length === 0 || r.inputs.length > MAX_JOB_INPUTS)
    throw new FirnError('E_INVALID_INPUT', `inputs must list 1..${MAX_JOB_INPUTS} artifact ids`);
  return {
    jobId,
    enc: (r.enc as string).toLowerCase() as Hex,
    ciphertext: r.ciphertext,
    inputs: r.inputs.map(parseArtifactId),
    ...(r.maxOutputBytes === undefined ? {} : { maxOutputBytes: parseOutputBound(r.maxOutputBytes) }),
  };
}
