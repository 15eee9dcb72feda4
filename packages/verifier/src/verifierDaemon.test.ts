import { DEV_POLICY, fetchEvidenceOverHttp } from '@firn/attestation';
import { firnRegistryAbi, getNode, getRegistrationEvents, NodeStatus } from '@firn/chain';
import { FirnError } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerPendingNode, startVerifierChain, type VerifierChain } from '../test/pendingNodeChain.ts';
import { VerifierDaemon } from './verifierDaemon.ts';

// A real anvil and the real registry (decision 1742): a node that gives no evidence (busy, rate
// limited, down) is not refused, and is tried again later honouring its Retry-After; evidence
// that fails verification is refused.
let chain: VerifierChain;
const measurement = keccak256(toHex('busy-build'));

beforeAll(async () => {
  chain = await startVerifierChain(measurement);
}, 120_000);
afterAll(() => chain?.anvil.stop());

describe('a node that gives no evidence is voted on later, never refused for it', () => {
  it('busy (429 + Retry-After) and down: no vote, the round stays open, the retry waits; bad evidence is refused', async () => {
    const { anvil, deployment } = chain;
    // Its endpoint is one where nothing listens (port 9): the real fetch of a node that is down.
    const { gov, verifierKey, enclaveId } = await registerPendingNode(chain, measurement, 'busy-node');
    let answer: 'busy' | 'down' | 'garbage' = 'busy';
    let fetched = 0;
    const warnings: string[] = [];
    const daemon = new VerifierDaemon({
      rpcUrl: anvil.rpcUrl,
      verifierKey,
      deployment,
      policy: DEV_POLICY,
      logger: { info() {}, warn: (m) => warnings.push(m), error() {} },
      checkProofs: false,
      fetchAttempts: 2,
      sweepIntervalMs: 50,
      fetchEvidence: async (endpoint, nonce) => {
        fetched++;
        if (answer === 'busy')
          throw new FirnError('E_UNAVAILABLE', 'node answered 429', {
            details: { status: 429, retryAfterMs: 700 },
          });
        if (answer === 'down')
          return fetchEvidenceOverHttp(endpoint, nonce, 2_000, { allowPrivateEndpoints: true });
        return '{"version":1,"teeType":"simulated","quote":"0x00"}';
      },
    });
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
    // Busy: the quick retry honours Retry-After (700 ms, not 500), then no vote.
    const t0 = Date.now();
    await daemon.onRegistration(event!);
    expect(fetched).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect(daemon.stats).toMatchObject({ approved: 0, refused: 0, skipped: 1 });
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);
    expect(await hasVoted()).toBe(false);
    expect(warnings).toContain('not voting yet: the node gave no evidence');
    // Within the node's Retry-After the round is not tried again.
    await daemon.onRegistration(event!);
    expect(fetched).toBe(2);
    // Down (connection refused on every try): still no vote, the next try backs off further.
    await new Promise((r) => setTimeout(r, 750));
    answer = 'down';
    await daemon.onRegistration(event!);
    expect(fetched).toBe(4);
    expect(daemon.stats.refused).toBe(0);
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Pending);
    expect(await hasVoted()).toBe(false);
    // Evidence that fails verification is a fact about the node: refused.
    await new Promise((r) => setTimeout(r, 250));
    answer = 'garbage';
    await daemon.onRegistration(event!);
    expect(fetched).toBe(5);
    expect(daemon.stats.refused).toBe(1);
    expect(await hasVoted()).toBe(true);
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Rejected);
  }, 60_000);
});
