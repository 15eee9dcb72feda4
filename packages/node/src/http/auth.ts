import type { IncomingMessage } from 'node:http';
import { FirnError, type Hex, hexBytes } from '@firn/core';
import {
  type NodeRequestScope,
  type NodeSubmission,
  nodeSubmissionDigest,
  recoverAddress,
  SIGNATURE_BYTES,
  type UploadIntent,
  uploadIntentDigest,
} from '@firn/crypto';

/**
 * Who may call the node API's mutating routes (docs/api.md, "Who may call"). The host checks a
 * secp256k1 signature over a tagged digest (packages/crypto/src/nodeAuth.ts) and who signed it;
 * a missing or malformed credential is E_UNAUTHENTICATED (401), a valid one from the wrong
 * address is E_FORBIDDEN (403).
 */

/** 65-byte r || s || v signature, hex, over the route's digest. */
export const SIGNATURE_HEADER = 'x-firn-signature';
/** Upload intent: the uploader's address, the artifact id (SHA-256 of the body) and the expiry. */
export const UPLOADER_HEADER = 'x-firn-uploader';
export const ARTIFACT_ID_HEADER = 'x-firn-artifact-id';
export const INTENT_EXPIRES_HEADER = 'x-firn-intent-expires';
/** DELETE /v1/sessions/{id}: the requester's sealed close message, base64. */
export const SESSION_AUTH_HEADER = 'x-firn-session-auth';
/** The longest an upload intent may be valid for, seconds from the node's clock. */
export const MAX_INTENT_LIFETIME_SECONDS = 3600;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? undefined : v;
}

function unauthenticated(message: string): FirnError {
  return new FirnError('E_UNAUTHENTICATED', message);
}

/** The request's signature header as 65 bytes; 401 when absent or malformed. */
export function signatureOf(req: IncomingMessage): Uint8Array {
  const v = header(req, SIGNATURE_HEADER);
  if (v === undefined) throw unauthenticated(`sign the request: header ${SIGNATURE_HEADER} is missing`);
  try {
    return hexBytes(v, SIGNATURE_HEADER, SIGNATURE_BYTES);
  } catch {
    throw unauthenticated(`${SIGNATURE_HEADER} must be a 65-byte hex signature`);
  }
}

/** The address that signed `digest`; 401 when the signature recovers to no key. */
export function signerOf(digest: Uint8Array, signature: Uint8Array): Hex {
  try {
    return recoverAddress(digest, signature);
  } catch {
    throw unauthenticated('the signature does not verify');
  }
}

/**
 * The signer of a job or session submission. The caller compares it with the job's on-chain
 * requester (403 when it differs).
 */
export function submissionSigner(
  req: IncomingMessage,
  route: 'POST /v1/jobs' | 'POST /v1/sessions',
  scope: NodeRequestScope,
  body: NodeSubmission,
): Hex {
  return signerOf(nodeSubmissionDigest(route, scope, body), signatureOf(req));
}

/**
 * Read and check an upload intent from the request headers: well-formed, signed by the named
 * uploader over this node's scope, not expired and not valid for longer than
 * MAX_INTENT_LIFETIME_SECONDS. Does not check the balance (the caller reads the chain).
 */
export function uploadIntentOf(req: IncomingMessage, scope: NodeRequestScope, now: number): UploadIntent {
  const uploader = header(req, UPLOADER_HEADER);
  const id = header(req, ARTIFACT_ID_HEADER);
  const expires = header(req, INTENT_EXPIRES_HEADER);
  if (uploader === undefined || id === undefined || expires === undefined)
    throw unauthenticated(
      `an upload needs a signed intent: headers ${UPLOADER_HEADER}, ${ARTIFACT_ID_HEADER}, ${INTENT_EXPIRES_HEADER} and ${SIGNATURE_HEADER}`,
    );
  let intent: UploadIntent;
  try {
    intent = {
      uploader: `0x${Buffer.from(hexBytes(uploader, UPLOADER_HEADER, 20)).toString('hex')}`,
      artifactId: `0x${Buffer.from(hexBytes(id, ARTIFACT_ID_HEADER, 32)).toString('hex')}`,
      size: Number(req.headers['content-length']),
      expiresAt: /^\d{1,12}$/.test(expires) ? Number(expires) : Number.NaN,
    };
  } catch {
    throw unauthenticated('the upload intent headers are malformed');
  }
  if (!Number.isSafeInteger(intent.expiresAt))
    throw unauthenticated(`${INTENT_EXPIRES_HEADER} must be unix seconds`);
  if (!Number.isSafeInteger(intent.size) || intent.size <= 0)
    throw new FirnError('E_INVALID_INPUT', 'an upload needs its Content-Length');
  if (intent.expiresAt <= now) throw unauthenticated('the upload intent has expired');
  if (intent.expiresAt > now + MAX_INTENT_LIFETIME_SECONDS)
    throw unauthenticated(`an upload intent may last at most ${MAX_INTENT_LIFETIME_SECONDS} s`);
  const signer = signerOf(uploadIntentDigest(scope, intent), signatureOf(req));
  if (signer !== intent.uploader) throw unauthenticated('the upload intent is not signed by the uploader');
  return intent;
}

/** The session close message from DELETE /v1/sessions/{id} (base64, passed to the enclave). */
export function sessionAuthOf(req: IncomingMessage): string {
  const v = header(req, SESSION_AUTH_HEADER);
  if (v === undefined || v.length === 0)
    throw unauthenticated(`closing a session needs header ${SESSION_AUTH_HEADER} (the sealed close message)`);
  if (v.length > 1024 || !/^[A-Za-z0-9+/]+={0,2}$/.test(v))
    throw unauthenticated(`${SESSION_AUTH_HEADER} must be base64`);
  return v;
}
