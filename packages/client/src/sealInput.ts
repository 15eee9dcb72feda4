import { randomBytes } from 'node:crypto';
import type { Hex } from '@firn/core';
import { artifactId, openArtifact, readArtifactHeader, sealArtifact } from '@firn/crypto';
import { parsePaddedContentType, unpadPlaintext } from './padding.ts';

/** A sealed artifact the requester holds the data key of (to grant it to an enclave later). */
export interface SealedInput {
  sealed: Uint8Array;
  dataKey: Uint8Array;
  artifactId: Hex;
  contentType: string;
}

/**
 * Seal bytes as an artifact the requester can open again (its own KEM key is the recipient) and
 * whose data key it keeps, so it can wrap the key to an attested enclave in a grant.
 */
export async function sealInput(
  bytes: Uint8Array,
  contentType: string,
  requesterKemPublicKey: Uint8Array,
): Promise<SealedInput> {
  const dataKey = new Uint8Array(randomBytes(32));
  const sealed = await sealArtifact(bytes, { recipients: [requesterKemPublicKey], contentType, dataKey });
  return { sealed, dataKey, artifactId: artifactId(sealed), contentType };
}

/**
 * Open a sealed output with the requester's KEM private key; returns its content type and bytes.
 * A padded artifact (content type parameter firn-pad=padme, see padding.ts) comes back without its
 * padding and without the parameter.
 */
export async function openOutput(
  sealed: Uint8Array,
  kemPrivateKey: Uint8Array,
): Promise<{ contentType: string; bytes: Uint8Array }> {
  const header = readArtifactHeader(sealed);
  const bytes = await openArtifact(sealed, { kemPrivateKey });
  const t = parsePaddedContentType(header.contentType);
  return t.padded
    ? { contentType: t.contentType, bytes: unpadPlaintext(bytes) }
    : { contentType: header.contentType, bytes };
}
