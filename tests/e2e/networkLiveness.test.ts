/**
 * Capacity rewards end to end on a real anvil with the real contracts, a node daemon whose
 * enclave is a separate process on the simulated TEE, and verifier clients. The attacks on the
 * liveness proof: an answer the host makes with the operator key, an answer after the deadline, a
 * replayed answer; then a live node that answers through its enclave earns its epoch reward, and
 * an epoch with only refused answers pays it nothing. Not covered: real TEE hardware.
 */
import {
  answerChallenge,
  type ChainRevertedError,
  type FirnClients,
  firnRewardsAbi,
  getChallenge,
  getNode,
  getNodeEpochReward,
  getRewardsState,
  issueChallenge,
  type LivenessChallenge,
  rewardsAddress,
} from '@firn/chain';
import { type Hex, livenessAnswerDigest } from '@firn/core';
import { LivenessService } from '@firn/node';
import { LivenessChallenger } from '@firn/verifier';
import { parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LIVENESS_ANSWER_WINDOW,
  type LivenessNetwork,
  startLivenessNetwork,
} from '../helpers/livenessNetwork.ts';
import { governBundleMeasurement } from '../helpers/governBundleMeasurement.ts';
import { increaseTime, type TestNetwork } from './network.ts';

let net: TestNetwork;
let verifier1: FirnClients;
let verifier2: FirnClients;
let operator: FirnClients;
let enclaveId: Hex;
let nextEpoch: LivenessNetwork['nextEpoch'];

beforeAll(async () => {
  // The daemons' own challengers never run: this test issues every challenge itself.
  const l = await startLivenessNetwork();
  ({ net, enclaveId, nextEpoch } = l);
  verifier1 = l.at(2);
  verifier2 = l.at(3);
  operator = l.at(4);
}, 120_000);
afterAll(() => net?.stop());

/** The enclave's own answer, as the node host gets it (the host cannot produce it). */
async function enclaveAnswer(c: LivenessChallenge): Promise<Hex> {
  const r = await net.node.supervisor.call<{ signature: Hex }>('livenessAnswer', {
    chainId: net.deployment.chainId,
    rewards: net.deployment.rewards,
    challengeId: c.challengeId,
    nonce: c.nonce,
    epoch: c.epoch.toString(),
  });
  return r.signature;
}

/** The revert of a call that must fail (a call that succeeds fails the test). */
const refused = (p: Promise<unknown>): Promise<ChainRevertedError> =>
  p.then(
    () => {
      throw new Error('expected the contract to refuse this call');
    },
    (e: unknown) => e as ChainRevertedError,
  );

const waitFor = async (f: () => Promise<boolean>, ms: number) => {
  const until = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe('liveness challenges and capacity rewards', () => {
  let refusedEpoch: bigint;

  it('refuses an answer made by the host with the operator key, and a stale one', async () => {
    // The node answers once first: a node that never answered takes one challenge per epoch
    // (decision 1576), and this test opens two at once in the refused epoch.
    await nextEpoch();
    const { challenge: first } = await issueChallenge(verifier1, enclaveId);
    await answerChallenge(operator, {
      challengeId: first.challengeId,
      signature: await enclaveAnswer(first),
    });
    refusedEpoch = await nextEpoch();
    const { challenge } = await issueChallenge(verifier1, enclaveId);
    expect(challenge.epoch).toBe(refusedEpoch);

    // The host knows the challenge and the typed data, but only holds the operator key.
    const digest = livenessAnswerDigest(
      { chainId: net.deployment.chainId, rewards: net.deployment.rewards! },
      { challengeId: challenge.challengeId, nonce: challenge.nonce, enclaveId, epoch: challenge.epoch },
    );
    const hostMade = await privateKeyToAccount(net.operator.privateKey).sign({ hash: digest });
    const forged = await refused(
      answerChallenge(operator, {
        challengeId: challenge.challengeId,
        signature: hostMade,
      }),
    );
    expect(forged.errorName).toBe('WrongSigner');
    expect(forged.args).toEqual([
      enclaveId,
      (await getNode(operator, enclaveId)).enclaveAddress,
      net.operator.address,
    ]);

    // The enclave's answer to another challenge's nonce (the warm-up's: with livenessTarget 1 no
    // second challenge is accepted in this epoch, decision 1695) does not answer this one.
    const wrongNonce = await refused(
      answerChallenge(operator, {
        challengeId: challenge.challengeId,
        signature: await enclaveAnswer(first),
      }),
    );
    expect(wrongNonce.errorName).toBe('WrongSigner');

    // Stale: a genuine enclave answer after the deadline.
    const genuine = await enclaveAnswer(challenge);
    await increaseTime(net.anvil.rpcUrl, LIVENESS_ANSWER_WINDOW + 1);
    const late = await refused(
      answerChallenge(operator, {
        challengeId: challenge.challengeId,
        signature: genuine,
      }),
    );
    expect(late.errorName).toBe('ChallengeExpired');
    expect(late.args![0]).toBe(challenge.challengeId);
    expect((await getChallenge(operator, challenge.challengeId)).answered).toBe(false);
    expect((await getNodeEpochReward(operator, { epoch: refusedEpoch, enclaveId })).points).toBe(0n);
  }, 60_000);

  it('a live node answers through its enclave, a replay is refused, and the node earns the epoch reward', async () => {
    const live = await nextEpoch();
    const service = new LivenessService(net.node, {
      rpcUrl: net.anvil.rpcUrl,
      operatorKey: net.operator.privateKey,
      deployment: net.deployment,
      logger: net.node.opts.logger,
      pollIntervalMs: 200,
    });
    service.start();
    try {
      const { challenge } = await issueChallenge(verifier1, enclaveId);
      await waitFor(async () => (await getChallenge(operator, challenge.challengeId)).answered, 20_000);
      // The service counts an answer once its own receipt wait returns, which can be a poll after
      // the chain shows it answered.
      await waitFor(async () => service.stats.answered > 0, 10_000);
      expect(service.stats.answered).toBe(1);
      // Replaying the accepted answer (read back from the relay transaction) is refused.
      const replay = await refused(
        answerChallenge(operator, {
          challengeId: challenge.challengeId,
          signature: await enclaveAnswer(challenge),
        }),
      );
      expect(replay.errorName).toBe('AlreadyAnswered');
      const earned = await getNodeEpochReward(operator, { epoch: live, enclaveId });
      expect(earned.answers).toBe(1);
      expect(earned.points).toBe(parseEther('2')); // the node's stake x one counted answer

      // The epoch ends; the node's host claims the share and withdraws it.
      await nextEpoch();
      await waitFor(
        // (The warm-up answer's epoch before the refused one is claimed too, first.)
        async () => service.stats.lastReward?.epoch === live && service.stats.withdrawn > 0n,
        20_000,
      );
      expect(service.stats.lastReward!.epoch).toBe(live);
      expect(service.stats.lastReward!.amount).toBeGreaterThan(0n);
      // The epoch in which every answer was refused pays nothing.
      expect((await getNodeEpochReward(operator, { epoch: refusedEpoch, enclaveId })).pending).toBe(0n);
      const st = await getRewardsState(operator);
      expect(st.totalWithdrawn).toBeLessThanOrEqual(st.totalAllocated);
      expect(st.totalAllocated).toBeLessThanOrEqual(st.totalReceived);
    } finally {
      service.stop();
    }
  }, 90_000);

  it('a verifier challenges each eligible node once an epoch, re-checks the answer, and claims its share', async () => {
    await nextEpoch();
    const service = new LivenessService(net.node, {
      rpcUrl: net.anvil.rpcUrl,
      operatorKey: net.operator.privateKey,
      deployment: net.deployment,
      logger: net.node.opts.logger,
      pollIntervalMs: 200,
    });
    service.start();
    const challenger = new LivenessChallenger(verifier2);
    try {
      await challenger.poll();
      expect(challenger.stats.issued).toBe(1);
      await challenger.poll(); // once per epoch: nothing new
      expect(challenger.stats.issued).toBe(1);
      await waitFor(async () => {
        await challenger.poll();
        return challenger.stats.answered === 1;
      }, 20_000);
      expect(challenger.stats.mismatched).toBe(0);
      await nextEpoch();
      await challenger.poll();
      expect(challenger.stats.rewardsClaimed).toBeGreaterThan(0n);
    } finally {
      challenger.stop();
      service.stop();
    }
  }, 90_000);

  it('past its liveness target the pool and the daemons refuse further challenges, before and after the answer', async () => {
    // One answered epoch ends any probation, so the next one accepts both challenges before an answer.
    await nextEpoch();
    const warmUp = await issueChallenge(verifier1, enclaveId);
    await answerChallenge(operator, {
      challengeId: warmUp.challenge.challengeId,
      signature: await enclaveAnswer(warmUp.challenge),
    });
    const epoch = await nextEpoch();
    const base = { address: rewardsAddress(verifier1), abi: firnRewardsAbi } as const;
    expect(await verifier1.public.readContract({ ...base, functionName: 'livenessTarget' })).toBe(1);
    const first = await issueChallenge(verifier1, enclaveId);
    // At most livenessTarget challenges per node and epoch are accepted (decision 1695): the second
    // daemon's is refused before the node answers, so no accepted challenge is left to expire.
    const second = await refused(issueChallenge(verifier2, enclaveId));
    expect(second.errorName).toBe('LivenessTargetReached');
    const service = new LivenessService(net.node, {
      rpcUrl: net.anvil.rpcUrl,
      operatorKey: net.operator.privateKey,
      deployment: net.deployment,
      logger: net.node.opts.logger,
      pollIntervalMs: 200,
    });
    const answeredBefore = service.stats.answered;
    service.start();
    const challenger = new LivenessChallenger(verifier1);
    try {
      await waitFor(async () => service.stats.answered - answeredBefore >= 1, 20_000);
      expect(service.stats.answered - answeredBefore).toBe(1);
      expect(service.stats.beyondTarget).toBe(0);
      expect((await getChallenge(operator, first.challenge.challengeId)).answered).toBe(true);
      expect((await getNodeEpochReward(operator, { epoch, enclaveId })).answers).toBe(1);
      // The pool says so before a daemon pays for a challenge, and refuses one sent anyway.
      expect(
        await verifier1.public.readContract({ ...base, functionName: 'isUnresponsive', args: [enclaveId] }),
      ).toBe(true);
      await challenger.poll();
      expect(challenger.stats.issued).toBe(0);
      expect(challenger.stats.skippedUnresponsive).toBe(1);
    } finally {
      challenger.stop();
      service.stop();
    }
  }, 60_000);
  it('a node whose measurement governance revokes after it answered loses the epoch points: the challenger drops them (decision 1708)', async () => {
    const epoch = await nextEpoch();
    const { challenge } = await issueChallenge(verifier1, enclaveId);
    await answerChallenge(operator, {
      challengeId: challenge.challengeId,
      signature: await enclaveAnswer(challenge),
    });
    const points = async () =>
      verifier1.public.readContract({
        address: rewardsAddress(verifier1),
        abi: firnRewardsAbi,
        functionName: 'nodePoints',
        args: [epoch, enclaveId],
      });
    expect(await points()).toBeGreaterThan(0n);
    const challenger = new LivenessChallenger(verifier2);
    try {
      await challenger.poll(); // challenges the (still eligible) node and takes its first log scan
      await governBundleMeasurement(net, 'revoke');
      await waitFor(async () => {
        await increaseTime(net.anvil.rpcUrl, 1);
        await challenger.poll();
        return challenger.stats.droppedRevoked === 1;
      }, 20_000);
      expect(await points()).toBe(0n);
    } finally {
      challenger.stop();
      await governBundleMeasurement(net, 'allow');
    }
  }, 90_000);
});
