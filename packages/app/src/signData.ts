import {
  assertSignedDataTopic,
  bytesToHex,
  FirnError,
  type Hex,
  hexBytes,
  InvalidInputError,
  type SignedDataLedger,
  signedDataDigest,
  signedDataHash,
  signedDataUri,
} from '@firn/core';
import { addressOf, signDigest } from '@firn/crypto';
import type { SignedDataRecord } from './index.ts';

/** Who signs a record: the enclave's secp256k1 key and its Enclave ID. */
export interface DataSigner {
  /** 32-byte secp256k1 private key (the enclave key; never leaves the enclave process). */
  signingKey: Uint8Array;
  /** 32-byte Enclave ID. */
  enclaveId: Uint8Array;
}

/**
 * Sign an app's 32-byte digest under a topic for a data ledger (FirnDataLedger.SignedData, see
 * `@firn/core` signedData.ts): dataHash = signedDataHash(topic, digest), uri = signedDataUri(topic),
 * signature = secp256k1 over signedDataDigest(ledger, {enclaveId, dataHash, uri}). Raises
 * E_INVALID_INPUT for a digest that is not 32 bytes or a malformed topic.
 */
export function signDataRecord(
  signer: DataSigner,
  ledger: SignedDataLedger,
  digest: Uint8Array,
  topic: string,
  jobId?: Hex,
): SignedDataRecord {
  if (!(digest instanceof Uint8Array) || digest.length !== 32)
    throw new InvalidInputError('signData takes a 32-byte digest (e.g. sha256 of the data)');
  const t = assertSignedDataTopic(topic);
  if (!(signer.enclaveId instanceof Uint8Array) || signer.enclaveId.length !== 32)
    throw new InvalidInputError('enclaveId must be 32 bytes');
  const enclaveId = bytesToHex(signer.enclaveId);
  const ledgerAddress = bytesToHex(hexBytes(ledger.address, 'ledger.address', 20));
  if (!Number.isSafeInteger(ledger.chainId) || ledger.chainId <= 0)
    throw new FirnError('E_INVALID_INPUT', 'ledger.chainId must be a positive integer');
  const dataHash = signedDataHash(t, digest);
  const uri = signedDataUri(t);
  const eip712 = signedDataDigest(
    { chainId: ledger.chainId, address: ledgerAddress },
    { enclaveId, dataHash, uri },
  );
  const signature = bytesToHex(signDigest(signer.signingKey, hexBytes(eip712, 'digest', 32)));
  return {
    v: 1,
    topic: t,
    digest: bytesToHex(digest),
    dataHash,
    uri,
    enclaveId,
    enclaveAddress: addressOf(signer.signingKey),
    signature,
    ledger: { chainId: ledger.chainId, address: ledgerAddress },
    ...(jobId === undefined ? {} : { jobId }),
  };
}
