import { DEV_POLICY } from '@firn/attestation';
import {
  getNode,
  getRegistrationEvents,
  governAndExecute,
  NodeStatus,
  revokeMeasurementCall,
} from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keccak256, toHex } from 'viem';
import { checkMeasurementAllowed } from './measurementAllowList.ts';
import { registerPendingNode, startVerifierChain, type VerifierChain } from '../test/pendingNodeChain.ts';
import { VerifierDaemon } from './verifierDaemon.ts';

// A real anvil and the real registry. The attack: governance revokes a measurement while a node
// running it is Pending; a verifier that only checked the evidence would approve it.
let chain: VerifierChain;
const quiet = { info() {}, warn() {}, error() {} };
const measurement = keccak256(toHex('revoked-build'));

beforeAll(async () => {
  chain = await startVerifierChain(measurement);
}, 120_000);
afterAll(() => chain?.anvil.stop());

describe('the verifier refuses a measurement that is not allow-listed at the block it reads', () => {
  it('refuses a node whose measurement was revoked while it was pending, without fetching evidence', async () => {
    const { anvil, deployment } = chain;
    const { gov, verifierKey, enclaveId } = await registerPendingNode(chain, measurement, 'pending-node');
    const before = await checkMeasurementAllowed(
      gov,
      { teeType: 1, measurement },
      await gov.public.getBlockNumber({ cacheTime: 0 }),
    );
    expect(before.allowed).toBe(true);
    await governAndExecute(gov, {
      timelock: deployment.timelock!,
      calls: [revokeMeasurementCall(deployment, { teeType: 1, measurement })],
      pollMs: 100,
      nudge: async () => {
        await gov.public.request({ method: 'evm_mine', params: [] } as never);
      },
    });
    const at = await gov.public.getBlockNumber({ cacheTime: 0 });
    const after = await checkMeasurementAllowed(gov, { teeType: 1, measurement }, at);
    expect(after).toMatchObject({ allowed: false, blockNumber: at, reasonCode: 12 });
    // Read at the earlier block, the entry is still there: the answer is the one of the block asked.
    expect((await checkMeasurementAllowed(gov, { teeType: 1, measurement }, at - 1n)).allowed).toBe(true);

    let fetched = 0;
    const daemon = new VerifierDaemon({
      rpcUrl: anvil.rpcUrl,
      verifierKey,
      deployment,
      policy: DEV_POLICY,
      logger: quiet,
      checkProofs: false,
      // Evidence that would be accepted is never even asked for.
      fetchEvidence: async () => {
        fetched++;
        throw new Error('must not be called');
      },
    });
    const [event] = await getRegistrationEvents(
      gov,
      deployment.deployBlock,
      await gov.public.getBlockNumber({ cacheTime: 0 }),
    );
    expect(event?.enclaveId).toBe(enclaveId);
    await daemon.onRegistration(event!);
    expect(fetched).toBe(0);
    expect(daemon.stats).toMatchObject({ approved: 0, refused: 1 });
    expect((await getNode(gov, enclaveId)).status).toBe(NodeStatus.Rejected);
  });
});
