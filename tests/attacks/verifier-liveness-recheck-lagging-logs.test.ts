/**
 * The verifier's re-check of an accepted liveness answer (decision 1400) reads `getChallenge` at the
 * head (answered) and then scans ChallengeAnswered logs from the issue block less 32. Behind a
 * load-balanced RPC whose log index lags the head by a block or two (or a slow node), the scan finds
 * nothing yet: the honest answer is counted `mismatched` (logged as an error: "accepted liveness
 * answer fails the off-chain check") and the challenge is dropped, so it is never re-checked once
 * the logs catch up. Promise: the re-check does not miss an answer because of a lagging RPC.
 */
import { firnRewardsAbi } from '@firn/chain';
import { type Hex, livenessAnswerDigest } from '@firn/core';
import { LivenessChallenger } from '@firn/verifier';
import { encodeFunctionData, serializeSignature } from 'viem';
import { sign } from 'viem/accounts';
import { describe, expect, it } from 'vitest';

const h32 = (b: number) => `0x${b.toString(16).padStart(2, '0').repeat(32)}` as Hex;

describe('liveness answer re-check behind an RPC whose logs lag the head', () => {
  it('an honest answer the log index has not reached yet is not reported as a mismatch, and is re-checked later', async () => {
    const rewards = '0x00000000000000000000000000000000000000aa';
    const chainId = 31337;
    const challenge = { challengeId: h32(1), nonce: h32(2), enclaveId: h32(3), epoch: 7n };
    const digest = livenessAnswerDigest({ chainId, rewards }, challenge);
    const signature = serializeSignature(await sign({ hash: digest, privateKey: h32(9) }));
    const input = encodeFunctionData({
      abi: firnRewardsAbi,
      functionName: 'answerChallenge',
      args: [challenge.challengeId, signature],
    });
    let logsCaughtUp = false;
    const errors: string[] = [];
    const publicClient = {
      // The head: the challenge is answered (an eth_call at 'latest').
      readContract: async (a: { functionName: string }) => {
        if (a.functionName === 'getChallenge')
          return { ...challenge, answered: true, deadline: 1_000n, enclaveId: challenge.enclaveId };
        if (a.functionName === 'wasEnclaveAddress') return true;
        throw new Error(`unexpected read ${a.functionName}`);
      },
      // The log index lags: the answer's block is not indexed yet on the first scan.
      getContractEvents: async () =>
        logsCaughtUp ? [{ transactionHash: h32(0xee), blockNumber: 120n, args: {} }] : [],
      getTransaction: async () => ({ input }),
    };
    const clients = {
      public: publicClient,
      addresses: {
        chainId,
        rewards,
        deployBlock: 1n,
        registry: '0x00000000000000000000000000000000000000bb',
      },
    } as unknown as ConstructorParameters<typeof LivenessChallenger>[0];
    const challenger = new LivenessChallenger(clients, {
      logger: { info() {}, warn() {}, error: (m: string) => errors.push(m) },
    });
    const internals = challenger as unknown as {
      open: Map<Hex, unknown>;
      follow(now: bigint): Promise<void>;
    };
    internals.open.set(challenge.challengeId, { ...challenge, deadline: 1_000n, issuedBlock: 118n });

    await internals.follow(100n);
    logsCaughtUp = true;
    await internals.follow(101n);

    expect(challenger.stats.mismatched).toBe(0);
    expect(errors).toEqual([]);
    expect(challenger.stats.answered).toBe(1);
  });
});
