export { ArtifactHasher, artifactId, artifactIdOfStream, teeArtifactId } from './artifactId.ts';
export {
  ArtifactError,
  type ArtifactErrorCode,
  type ArtifactHeader,
  type ArtifactRecipient,
  DEFAULT_CHUNK_SIZE,
  kemKeyId,
  MAX_CHUNK_SIZE,
  MAX_CONTENT_TYPE_BYTES,
  MAX_RECIPIENTS,
  MIN_CHUNK_SIZE,
} from './artifactHeader.ts';
export type { ByteStream } from './ByteSource.ts';
export { type ArtifactKey, openArtifact, openArtifactStream, unwrapDataKey } from './openArtifactStream.ts';
export { readArtifactHeader } from './readArtifactHeader.ts';
export {
  discardArtifactKey,
  type PreparedArtifactKey,
  prepareArtifactKey,
  type SealArtifactOptions,
  sealArtifact,
  sealArtifactStream,
} from './sealArtifactStream.ts';
