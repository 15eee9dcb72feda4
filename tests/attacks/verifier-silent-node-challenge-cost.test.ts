/**
 * A silent Active node made every verifier pay an issueChallenge transaction each epoch, forever,
 * for one registration fee (contracts/test/AttackKEconomics.t.sol). Decision 1576: a node that
 * never answered (or missed its last challenged epoch) takes one challenge per epoch, none after
 * MAX_MISSED_EPOCHS; the verifier daemon reads `isUnresponsive` first and skips it, so the
 * verifiers together pay for at most MAX_MISSED_EPOCHS challenges. Here the network's node runs no
 * liveness service: it is the silent node.
 */
import {
  type FirnClients,
  createFirnClients,
  firnRewardsAbi,
  getRewardsState,
  rewardsAddress,
} from '@firn/chain';
import type { Hex } from '@firn/core';
import { LivenessChallenger } from '@firn/verifier';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { increaseTime, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

const EPOCH = 30;
const ANSWER_WINDOW = 10;
let net: TestNetwork;
let v1: FirnClients;
let v2: FirnClients;
let enclaveId: Hex;

beforeAll(async () => {
  net = await startTestNetwork({
    epochLength: EPOCH,
    answerWindow: ANSWER_WINDOW,
    poolDeposit: parseEther('1'),
  });
  // The daemons' own challengers are stopped: the challengers below are the test's own.
  for (const v of net.verifiers) v.liveness?.stop();
  const at = (i: number) =>
    createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[i]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
  v1 = at(2);
  v2 = at(3);
  enclaveId = net.node.identity!.enclaveId;
}, 120_000);
afterAll(() => net?.stop());

/** Move chain time to the first second of the next epoch. */
async function nextEpoch(): Promise<void> {
  const st = await getRewardsState(v1);
  const block = await v1.public.getBlock({ blockTag: 'latest' });
  await increaseTime(
    net.anvil.rpcUrl,
    Number(st.genesis + (st.currentEpoch + 1n) * st.epochLength - block.timestamp),
  );
}

describe('a silent node and the verifiers challenging it', () => {
  it('costs the verifiers MAX_MISSED_EPOCHS challenges in all, then none, whatever the epochs', async () => {
    const bound = await v1.public.readContract({
      address: rewardsAddress(v1),
      abi: firnRewardsAbi,
      functionName: 'MAX_MISSED_EPOCHS',
    });
    const c1 = new LivenessChallenger(v1);
    const c2 = new LivenessChallenger(v2);
    try {
      for (let e = 0; e < bound + 3; e++) {
        await nextEpoch();
        await c1.poll();
        await c2.poll();
      }
      // One challenge per epoch while on probation (the first daemon's), none after the bound.
      expect(c1.stats.issued + c2.stats.issued).toBe(bound);
      expect(c1.stats.answered + c2.stats.answered).toBe(0);
      expect(c2.stats.issued).toBe(0);
      expect(c2.stats.skippedUnresponsive).toBe(bound + 3);
      expect(c1.stats.skippedUnresponsive).toBe(3);
      const missed = await v1.public.readContract({
        address: rewardsAddress(v1),
        abi: firnRewardsAbi,
        functionName: 'missedEpochs',
        args: [enclaveId],
      });
      expect(missed).toBe(bound);
    } finally {
      c1.stop();
      c2.stop();
    }
  }, 90_000);
});
