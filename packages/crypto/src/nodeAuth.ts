import { type Hex, hexBytes, sha256, TAGS, u64be, utf8 } from '@firn/core';
import { taggedDigest } from './signatures.ts';

/**
 * What a requester signs to use a node's API (docs/api.md, "Who may call"). Each digest is
 * keccak256 over a domain tag and length-prefixed fields (taggedDigest), signed with the
 * requester's secp256k1 key (signDigest) and checked by the host with recoverAddress. They
 * authenticate a caller to the untrusted host; nothing secret is in them.
 */

/** The deployment and node a request is meant for, so a signature is not reusable elsewhere. */
export interface NodeRequestScope {
  chainId: number;
  /** The job market the job is posted on. */
  jobMarket: Hex;
  /** The Enclave ID of the node addressed (its registry id). */
  enclaveId: Hex;
}

/** A job or session submission as POST /v1/jobs and POST /v1/sessions carry it. */
export interface NodeSubmission {
  jobId: Hex;
  enc: Hex;
  /** Base64 channel ciphertext, exactly as sent. */
  ciphertext: string;
  inputs: readonly Hex[];
  /** The job's declared output bound, bytes (JobRequest.maxOutputBytes), when it declares one. */
  maxOutputBytes?: number;
}

/**
 * Digest of one job submission (route 'POST /v1/jobs' or 'POST /v1/sessions') under tag
 * firn/node-request/v1: route, chain id, job market, Enclave ID, jobId, enc, SHA-256 of the
 * ciphertext text, and the input ids in order, then, only when the submission declares an output
 * bound, the label "maxOutputBytes" and the bound (u64 BE; decision 1690: a submission without one
 * has the digest it always had). The job's on-chain requester signs it, so a stranger can neither
 * submit a job first nor alter a submitted one.
 */
export function nodeSubmissionDigest(
  route: 'POST /v1/jobs' | 'POST /v1/sessions',
  scope: NodeRequestScope,
  s: NodeSubmission,
): Uint8Array {
  return taggedDigest(TAGS.nodeRequest, [
    utf8(route),
    u64be(scope.chainId),
    hexBytes(scope.jobMarket, 'jobMarket', 20),
    hexBytes(scope.enclaveId, 'enclaveId', 32),
    hexBytes(s.jobId, 'jobId', 32),
    hexBytes(s.enc, 'enc', 32),
    sha256(utf8(s.ciphertext)),
    ...s.inputs.map((id) => hexBytes(id, 'input id', 32)),
    ...(s.maxOutputBytes === undefined ? [] : [utf8('maxOutputBytes'), u64be(s.maxOutputBytes)]),
  ]);
}

/** An upload intent: who uploads which sealed bytes to which node, until when. */
export interface UploadIntent {
  /** The uploader's Ethereum address (must hold a balance on chain). */
  uploader: Hex;
  /** SHA-256 of the sealed bytes (the artifact id). */
  artifactId: Hex;
  /** Exact byte length of the upload. */
  size: number;
  /** Unix seconds after which the node refuses the intent. */
  expiresAt: number;
}

/**
 * Digest of an upload intent under tag firn/upload-intent/v1: chain id, job market, Enclave ID,
 * uploader, artifact id, size, expiry. Binding the artifact id and size means a captured intent
 * can only ever upload the same bytes to the same node (which then deduplicates them).
 */
export function uploadIntentDigest(scope: NodeRequestScope, i: UploadIntent): Uint8Array {
  if (!Number.isSafeInteger(i.size) || i.size < 0)
    throw new RangeError('size must be a non-negative integer');
  if (!Number.isSafeInteger(i.expiresAt) || i.expiresAt < 0)
    throw new RangeError('expiresAt must be unix seconds');
  return taggedDigest(TAGS.uploadIntent, [
    u64be(scope.chainId),
    hexBytes(scope.jobMarket, 'jobMarket', 20),
    hexBytes(scope.enclaveId, 'enclaveId', 32),
    hexBytes(i.uploader, 'uploader', 20),
    hexBytes(i.artifactId, 'artifactId', 32),
    u64be(i.size),
    u64be(i.expiresAt),
  ]);
}

/**
 * The plaintext of a session's close request: the tag firn/session-close/v1. The requester seals
 * it as the session's next request message (so it carries the session's AEAD tag and sequence
 * number) and sends it with DELETE /v1/sessions/{id}; the enclave closes only on a message that
 * opens under the session's request key to exactly these bytes. A replay fails the sequence check.
 */
export function sessionClosePlaintext(): Uint8Array {
  return utf8(TAGS.sessionClose);
}
