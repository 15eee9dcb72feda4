export { AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, aesGcmDecrypt, aesGcmEncrypt } from './aesGcm.ts';
export * from './artifact/index.ts';
export {
  acceptChannel,
  CHANNEL_HEADER_BYTES,
  CHANNEL_MIN_PADDED_BYTES,
  type ChannelMessage,
  type ChannelMessageKind,
  type ChannelOptions,
  ChannelError,
  channelMessageToBase64,
  channelMessageToHex,
  channelPaddedLength,
  decodeChannelMessage,
  type EnclaveChannel,
  encodeChannelMessage,
  MAX_CHANNEL_MESSAGE_BYTES,
  MAX_CHANNEL_REQUEST_BODY_BYTES,
  MAX_CHANNEL_STREAM_BODY_BYTES,
  openChannel,
  type RequesterChannel,
} from './channel.ts';
export {
  type CreateGrantParams,
  createGrant,
  type Grant,
  GrantError,
  type GrantScope,
  grantDigest,
  grantToJson,
  MAX_GRANT_JSON_BYTES,
  openGrantKey,
  parseGrant,
  type VerifyGrantContext,
  verifyGrant,
} from './grant.ts';
export { HKDF_SHA256_MAX_LENGTH, hkdfSha256 } from './hkdf.ts';
export {
  createRecipientContext,
  createSenderContext,
  deriveKemKeyPair,
  generateKemKeyPair,
  type HpkeContextOptions,
  type HpkeOptions,
  type HpkeRecipientContext,
  type HpkeSenderContext,
  hpkeOpen,
  hpkeSeal,
  KEM_ENC_BYTES,
  KEM_KEY_BYTES,
  type KemKeyPair,
  kemPublicKeyOf,
} from './hpke.ts';
export {
  addressOf,
  generateSigningKey,
  publicKeyOf,
  recoverAddress,
  SIGNATURE_BYTES,
  type SigningKeyPair,
  signDigest,
  signTagged,
  taggedDigest,
  verifyDigest,
  verifyTagged,
} from './signatures.ts';
export { assertKemRecipientKeys, isLowOrderX25519PublicKey, x25519SharedSecret } from './x25519.ts';
export * from './sessionChannel.ts';
export * from './nodeAuth.ts';
