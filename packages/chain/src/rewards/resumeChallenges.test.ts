import { describe, expect, it } from 'vitest';
import { resumeFeeAt } from './resumeChallenges.ts';

// The client-side price of a resume must equal FirnRewards._resumeFee for the same inputs
// (decisions 1591, 1594, 1645, 1695), or the node's automatic resume and `firn rewards resume` send too
// little (ResumeFeeTooLow) when the node's recorded challenge cost is above the block's price.

const GWEI = 10n ** 9n;
const parts = {
  registrationFee: 0n,
  maxMissedEpochs: 3,
  challengeGas: 230_000n,
  refusedChallengeGas: 75_000n,
  verifierCount: 4n,
  livenessTarget: 1,
  peakChallengeCost: 0n,
};

describe('resumeFeeAt', () => {
  it('prices three probation epochs of the racing verifiers at the base fee', () => {
    expect(resumeFeeAt(parts, 10n * GWEI)).toBe(3n * (230_000n + 3n * 75_000n) * 10n * GWEI);
  });

  it('prices min(target, verifiers) accepted challenges per epoch (decision 1695)', () => {
    expect(resumeFeeAt({ ...parts, livenessTarget: 3 }, 10n * GWEI)).toBe(
      3n * (3n * 230_000n + 1n * 75_000n) * 10n * GWEI,
    );
    // A target above the verifier count: every verifier's challenge is accepted, none refused.
    expect(resumeFeeAt({ ...parts, livenessTarget: 9 }, 10n * GWEI)).toBe(3n * 4n * 230_000n * 10n * GWEI);
    // No active verifier: priced as one.
    expect(resumeFeeAt({ ...parts, verifierCount: 0n }, 10n * GWEI)).toBe(3n * 230_000n * 10n * GWEI);
  });

  it('never prices below the dearest epoch the spell cost the verifiers', () => {
    const peak = (230_000n + 3n * 75_000n) * 30n * GWEI;
    const q = { ...parts, peakChallengeCost: peak };
    expect(resumeFeeAt(q, 1n * GWEI)).toBe(3n * peak);
    // A dearer block than the spell: today's price.
    expect(resumeFeeAt(q, 60n * GWEI)).toBe(2n * 3n * peak);
  });

  it('never asks less than the registration fee', () => {
    const q = { ...parts, registrationFee: 10n ** 16n, peakChallengeCost: 1n };
    expect(resumeFeeAt(q, 0n)).toBe(10n ** 16n);
  });
});
