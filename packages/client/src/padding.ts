/**
 * Size-bucket padding for sealed artifacts (`firn artifact seal --pad`,
 * docs/decisions/0872-artifact-padding.md): the helpers live in @firn/core (the enclave strips a
 * job input's padding with them, docs/decisions/1852); this entry keeps `@firn/client/padding` a
 * small import for the CLI.
 */
export {
  MIN_PADDED_BYTES,
  PAD_PARAMETER,
  paddedContentType,
  paddedLength,
  padmeLength,
  padPlaintext,
  parsePaddedContentType,
  unpadPlaintext,
} from '@firn/core';
