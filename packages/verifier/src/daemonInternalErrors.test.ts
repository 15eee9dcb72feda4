import { DEV_POLICY, type RegistrationVerdict } from '@firn/attestation';
import { firnRegistryAbi, getNode, getRegistrationEvents, NodeStatus } from '@firn/chain';
import { REFUSAL_CODES } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPendingNode, startVerifierChain, type VerifierChain } from '../test/pendingNodeChain.ts';
import {
  internalFailureVerdict,
  nodeGaveNoEvidence,
  ownMachineryFailed,
  ownServiceUnavailable,
  VerifierDaemon,
} from './verifierDaemon.ts';

// A failure of the verifier's own machinery while judging a round (E_INTERNAL in the verdict, or
// an appraisal that throws) is no fact about the node: the daemon logs it and abstains, and tries
// the round again later, instead of refusing a node that may be honest (decision 1831).

describe('verdict classes', () => {
  it('an E_INTERNAL reason or a thrown appraisal is the verifier’s own failure; a refusal of the evidence is not', () => {
    const internal: RegistrationVerdict = {
      approve: false,
      reasonCode: REFUSAL_CODES.E_OTHER,
      reasons: [{ code: 'E_INTERNAL', message: 'the appraisal failed: x is undefined' }],
    };
    expect(ownMachineryFailed(internal)).toBe(true);
    expect(nodeGaveNoEvidence(internal)).toBe(false);
    expect(ownServiceUnavailable(internal)).toBe(false);
    const thrown = internalFailureVerdict(new TypeError('x is undefined'));
    expect(ownMachineryFailed(thrown)).toBe(true);
    expect(thrown.approve).toBe(false);
    const malformed: RegistrationVerdict = {
      approve: false,
      reasonCode: REFUSAL_CODES.E_EVIDENCE_MALFORMED,
      reasons: [{ code: 'E_EVIDENCE_MALFORMED', message: 'evidence bundle is not JSON' }],
    };
    expect(ownMachineryFailed(malformed)).toBe(false);
  });
});

let chain: VerifierChain;
const measurement = keccak256(toHex('internal-error-build'));

beforeAll(async () => {
  chain = await startVerifierChain(measurement);
}, 120_000);
afterAll(() => chain?.anvil.stop());

describe('the daemon abstains on its own failures', () => {
  it('no vote on an E_INTERNAL verdict or a throwing appraisal, logged and tried again later; a refusal of the evidence is cast', async () => {
    const { anvil, deployment } = chain;
    const { gov, verifierKey, enclaveId } = await registerPendingNode(
      chain,
      measurement,
      'internal-error-node',
    );
    const errors: string[] = [];
    const daemon = new VerifierDaemon({
      rpcUrl: anvil.rpcUrl,
      verifierKey,
      deployment,
      policy: DEV_POLICY,
      logger: { info() {}, warn() {}, error: (m, f) => errors.push(`${m} ${JSON.stringify(f ?? {})}`) },
      checkProofs: false,
      challengeLiveness: false,
      fetchAttempts: 3,
      sweepIntervalMs: 50,
    });
    let judged = 0;
    let answer: 'internal' | 'throw' | 'malformed' = 'internal';
    daemon.appraise = async () => {
      judged++;
      if (answer === 'throw') throw new TypeError("Cannot read properties of undefined (reading 'x')");
      if (answer === 'internal')
        return {
          approve: false,
          reasonCode: REFUSAL_CODES.E_OTHER,
          reasons: [{ code: 'E_INTERNAL', message: 'the appraisal failed: a library bug' }],
        };
      return {
        approve: false,
        reasonCode: REFUSAL_CODES.E_EVIDENCE_MALFORMED,
        reasons: [{ code: 'E_EVIDENCE_MALFORMED', message: 'evidence bundle is not JSON' }],
      };
    };
    const [event] = await getRegistrationEvents(
      gov,
      deployment.deployBlock,
      await gov.public.getBlockNumber({ cacheTime: 0 }),
    );
    const hasVoted = () =>
      gov.public.readContract({
        address: deployment.registry,
        abi: firnRegistryAbi,
        functionName: 'hasVoted',
        args: [enclaveId, event!.round, privateKeyToAccount(verifierKey).address],
      });

    // E_INTERNAL: no vote, no quick retry (the same code fails the same way), an error logged.
    await daemon.onRegistration(event!);
    expect(judged).toBe(1);
    expect(await hasVoted()).toBe(false);
    expect(daemon.stats).toMatchObject({ approved: 0, refused: 0, skipped: 1 });
    expect(errors.join('\n')).toMatch(
      /not voting: the verifier failed while judging the evidence.*E_INTERNAL/,
    );
    // Tried again later, not at once.
    await daemon.onRegistration(event!);
    expect(judged).toBe(1);

    // A thrown appraisal is the same: abstained, logged.
    await new Promise((r) => setTimeout(r, 150));
    answer = 'throw';
    await daemon.onRegistration(event!);
    expect(judged).toBe(2);
    expect(await hasVoted()).toBe(false);
    expect(daemon.stats.refused).toBe(0);
    expect(errors.join('\n')).toMatch(/Cannot read properties of undefined/);
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);

    // Evidence that is wrong is a fact about the node: refused.
    await new Promise((r) => setTimeout(r, 250));
    answer = 'malformed';
    await daemon.onRegistration(event!);
    expect(await hasVoted()).toBe(true);
    expect(daemon.stats.refused).toBe(1);
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Rejected);
  }, 60_000);

  it('an abstention of any kind keeps the round backed off: its own service unavailable is not judged again at every sweep (decision 1834)', async () => {
    const { anvil, deployment } = chain;
    const { gov, verifierKey, enclaveId } = await registerPendingNode(
      chain,
      measurement,
      'abstain-backoff-node',
      {
        join: false,
      },
    );
    const warnings: Array<Record<string, unknown>> = [];
    const daemon = new VerifierDaemon({
      rpcUrl: anvil.rpcUrl,
      verifierKey,
      deployment,
      policy: DEV_POLICY,
      logger: { info() {}, warn: (_m, f) => warnings.push(f ?? {}), error() {} },
      checkProofs: false,
      challengeLiveness: false,
      fetchAttempts: 1,
      sweepIntervalMs: 200,
    });
    let judged = 0;
    // The verifier's PCS is down (or a node made it answer so): E_UNAVAILABLE of its own service.
    daemon.appraise = async () => {
      judged++;
      return {
        approve: false,
        reasonCode: REFUSAL_CODES.E_OTHER,
        reasons: [{ code: 'E_UNAVAILABLE', message: 'collateral service answered 503' }],
      };
    };
    const events = await getRegistrationEvents(
      gov,
      deployment.deployBlock,
      await gov.public.getBlockNumber({ cacheTime: 0 }),
    );
    const event = events.find((x) => x.enclaveId === enclaveId)!;
    await daemon.onRegistration(event);
    expect(judged).toBe(1);
    // Every try before the backoff ends is skipped: the schedule survived the abstention.
    for (let i = 0; i < 5; i++) await daemon.onRegistration(event);
    expect(judged).toBe(1);
    expect(warnings.at(-1)).toMatchObject({ failures: 1, retryInMs: 200 });
    // After it, the round is judged again and backs off further (the doubled wait).
    await new Promise((r) => setTimeout(r, 250));
    await daemon.onRegistration(event);
    expect(judged).toBe(2);
    expect(warnings.at(-1)).toMatchObject({ failures: 2, retryInMs: 400 });
    await daemon.onRegistration(event);
    expect(judged).toBe(2);
    expect(daemon.stats).toMatchObject({ approved: 0, refused: 0 });
  }, 60_000);

  it('an error of the daemon’s own chain reads never rejects onRegistration', async () => {
    const { anvil, deployment } = chain;
    const warnings: string[] = [];
    const daemon = new VerifierDaemon({
      rpcUrl: anvil.rpcUrl,
      verifierKey: anvil.accounts[2]!.privateKey,
      deployment,
      policy: DEV_POLICY,
      logger: { info() {}, warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f ?? {})}`), error() {} },
      checkProofs: false,
      challengeLiveness: false,
    });
    // An Enclave ID that is not bytes32 fails the claim read with a typed input error.
    await expect(
      daemon.onRegistration({ kind: 'registered', enclaveId: '0x1234', round: 1 } as never),
    ).resolves.toBeUndefined();
    expect(warnings.join('\n')).toMatch(/could not judge a round.*enclaveId must be 32 bytes/);
    expect(daemon.stats.skipped).toBe(1);
  }, 30_000);
});
