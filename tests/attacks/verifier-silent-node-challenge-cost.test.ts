/**
 * A silent Active node made every verifier pay an issueChallenge transaction each epoch, forever,
 * for one registration fee (contracts/test/AttackKEconomics.t.sol). Decision 1576: a node that
 * never answered (or missed its last challenged epoch) takes one challenge per epoch, none after
 * MAX_MISSED_EPOCHS; the verifier daemon reads `isUnresponsive` first and skips it, so the
 * verifiers together pay for at most MAX_MISSED_EPOCHS challenges. Here the network's node runs no
 * liveness service: it is the silent node.
 */
import { type FirnClients, firnRewardsAbi, rewardsAddress } from '@firn/chain';
import type { Hex } from '@firn/core';
import { LivenessChallenger } from '@firn/verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestNetwork } from '../e2e/network.ts';
import { type LivenessNetwork, startLivenessNetwork } from '../helpers/livenessNetwork.ts';

let net: TestNetwork;
let v1: FirnClients;
let v2: FirnClients;
let enclaveId: Hex;
let nextEpoch: LivenessNetwork['nextEpoch'];

beforeAll(async () => {
  // The daemons' own challengers are stopped: the challengers below are the test's own.
  const l = await startLivenessNetwork();
  ({ net, enclaveId, nextEpoch } = l);
  v1 = l.at(2);
  v2 = l.at(3);
}, 120_000);
afterAll(() => net?.stop());

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
