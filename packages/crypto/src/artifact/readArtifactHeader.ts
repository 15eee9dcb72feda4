import { ByteSource, type ByteStream } from './ByteSource.ts';
import { type ArtifactHeader, parseArtifactHeader, readArtifactHeaderFrom } from './artifactHeader.ts';

/**
 * Parse a sealed artifact's header from its bytes or the start of a stream (a stream is read
 * at least to the end of the header and is not usable afterwards). Checks structure and sizes only: nothing is authenticated
 * until the chunks are opened.
 */
export function readArtifactHeader(input: Uint8Array): ArtifactHeader;
export function readArtifactHeader(input: ByteStream): Promise<ArtifactHeader>;
export function readArtifactHeader(input: Uint8Array | ByteStream): ArtifactHeader | Promise<ArtifactHeader> {
  if (input instanceof Uint8Array) return parseArtifactHeader(input);
  const src = new ByteSource(input);
  return readArtifactHeaderFrom(src);
}
