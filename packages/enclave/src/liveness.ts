import { bytesToHex, type Hex, hexBytes, InvalidInputError, livenessAnswerDigest } from '@firn/core';
import { signDigest } from '@firn/crypto';
import type { Handler } from './enclaveProgram.ts';

/** What the host asks: the challenge as read from chain, and the contract it answers to. */
export interface LivenessAnswerParams {
  chainId: number;
  /** The rewards contract (EIP-712 verifyingContract). */
  rewards: Hex;
  challengeId: Hex;
  nonce: Hex;
  /** Decimal string (uint64). */
  epoch: string;
}

/** What the enclave returns: its own Enclave ID and the 65-byte r || s || v signature. */
export interface LivenessAnswerResult {
  enclaveId: Hex;
  enclaveAddress: Hex;
  signature: Hex;
}

function parseParams(p: Record<string, unknown>): LivenessAnswerParams {
  if (typeof p.chainId !== 'number' || !Number.isSafeInteger(p.chainId) || p.chainId <= 0)
    throw new InvalidInputError('chainId must be a positive integer');
  if (typeof p.epoch !== 'string' || !/^\d{1,20}$/.test(p.epoch))
    throw new InvalidInputError('epoch must be a decimal string');
  hexBytes(p.rewards, 'rewards', 20);
  hexBytes(p.challengeId, 'challengeId', 32);
  hexBytes(p.nonce, 'nonce', 32);
  return p as unknown as LivenessAnswerParams;
}

/**
 * `livenessAnswer`: sign the EIP-712 LivenessAnswer{challengeId, nonce, enclaveId, epoch} with the
 * enclave key (see @firn/core liveness.ts). The Enclave ID is the enclave's own, never a
 * parameter, and the typed-data type hash separates it from Work Proofs and signed data, so the
 * host can use this op only to prove that this enclave is running now. It proves liveness of the
 * enclave key holder; whether the challenge is fresh and open is the contract's to judge.
 */
export const livenessHandlers: Record<string, Handler> = {
  async livenessAnswer(params, ctx): Promise<LivenessAnswerResult> {
    const p = parseParams(params);
    const keys = ctx.keys();
    const enclaveId = bytesToHex(ctx.enclaveId());
    const digest = livenessAnswerDigest(
      { chainId: p.chainId, rewards: p.rewards },
      { challengeId: p.challengeId, nonce: p.nonce, enclaveId, epoch: BigInt(p.epoch) },
    );
    const signature = signDigest(keys.signingKey, hexBytes(digest, 'digest', 32));
    return { enclaveId, enclaveAddress: bytesToHex(keys.enclaveAddress), signature: bytesToHex(signature) };
  },
};
