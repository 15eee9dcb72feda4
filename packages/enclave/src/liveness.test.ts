import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex, type Hex, hexBytes, livenessAnswerDigest, sha256, workProofDigest } from '@firn/core';
import { generateSigningKey, recoverAddress, signDigest } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from './enclaveProgram.ts';
import { createSimulatedProvider } from './evidence/simulated.ts';
import type { LivenessAnswerResult } from './liveness.ts';

// In-process enclave program; the host is played by hand. The contract-side check of the same
// signature runs in tests/e2e/liveness.test.ts against the real rewards contract.
const root = await createSimulatedRoot();
const platform = await createSimulatedPlatform(root);
const program = createEnclaveProgram({
  provider: createSimulatedProvider(platform, sha256(new Uint8Array([3]))),
  measurementRegisters: [sha256(new Uint8Array([3]))],
  platformId: hexBytes(platform.platformId, 'platformId'),
});
const identity = (await program.handle('init', {})) as { enclaveId: Hex; enclaveAddress: Hex };
const domain = { chainId: 31337, rewards: '0x00000000000000000000000000000000000000bb' as Hex };
const challenge = {
  challengeId: bytesToHex(sha256(new Uint8Array([1]))),
  nonce: bytesToHex(sha256(new Uint8Array([2]))),
  epoch: 7n,
};

describe('enclave livenessAnswer', () => {
  it('signs the LivenessAnswer for its own Enclave ID with the enclave key', async () => {
    const r = (await program.handle('livenessAnswer', {
      ...domain,
      challengeId: challenge.challengeId,
      nonce: challenge.nonce,
      epoch: '7',
    })) as LivenessAnswerResult;
    expect(r.enclaveId).toBe(identity.enclaveId);
    const digest = livenessAnswerDigest(domain, { ...challenge, enclaveId: identity.enclaveId });
    const signer = recoverAddress(hexBytes(digest, 'digest', 32), hexBytes(r.signature, 'signature', 65));
    expect(signer).toBe(identity.enclaveAddress.toLowerCase());
    // Bound to the nonce: the same signature does not answer another challenge.
    const other = livenessAnswerDigest(domain, {
      ...challenge,
      nonce: bytesToHex(sha256(new Uint8Array([9]))),
      enclaveId: identity.enclaveId,
    });
    expect(recoverAddress(hexBytes(other, 'digest', 32), hexBytes(r.signature, 'signature', 65))).not.toBe(
      identity.enclaveAddress.toLowerCase(),
    );
  });

  it('ignores an Enclave ID the host passes: it answers only for itself', async () => {
    const foreign = bytesToHex(sha256(new Uint8Array([5])));
    const r = (await program.handle('livenessAnswer', {
      ...domain,
      ...challenge,
      epoch: '7',
      enclaveId: foreign,
    })) as LivenessAnswerResult;
    expect(r.enclaveId).toBe(identity.enclaveId);
  });

  it('a host-made answer (operator key) does not recover the enclave address', () => {
    const operator = generateSigningKey();
    const digest = hexBytes(
      livenessAnswerDigest(domain, { ...challenge, enclaveId: identity.enclaveId }),
      'd',
      32,
    );
    const forged = signDigest(operator.privateKey, digest);
    expect(recoverAddress(digest, forged)).not.toBe(identity.enclaveAddress.toLowerCase());
  });

  it('a liveness digest never equals a Work Proof digest over the same words', () => {
    const d = livenessAnswerDigest(domain, { ...challenge, enclaveId: identity.enclaveId });
    const w = workProofDigest(
      { chainId: 31337, jobMarket: domain.rewards },
      {
        jobId: challenge.challengeId,
        enclaveId: identity.enclaveId,
        measurement: challenge.nonce,
        workloadHash: challenge.nonce,
        inputCommitment: challenge.nonce,
        outputCommitment: challenge.nonce,
        startedAt: 7n,
        finishedAt: 7n,
        workUnits: 7n,
      },
    );
    expect(d).not.toBe(w);
  });

  it('refuses malformed parameters with E_INVALID_INPUT', async () => {
    for (const bad of [
      { ...domain, ...challenge, epoch: '-1' },
      { ...domain, ...challenge, epoch: '7', nonce: '0x1234' },
      { ...domain, ...challenge, epoch: '7', rewards: '0xzz' },
      { ...domain, ...challenge, epoch: '7', chainId: 0 },
    ])
      await expect(program.handle('livenessAnswer', bad)).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });
});
