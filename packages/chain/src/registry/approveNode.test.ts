import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestFirn } from '../../test/testDeployment.ts';
import { type AnvilInstance, startAnvil } from '../anvil.ts';
import { createFirnClients, type FirnClients } from '../clients.ts';
import { getRewardsState, getVerifierEpochReward } from '../rewards/getRewardsState.ts';
import { NodeStatus } from '../types.ts';
import { joinVerifierSet } from '../verifierSet/joinVerifierSet.ts';
import { approveNode } from './approveNode.ts';
import { getNode } from './getNode.ts';
import { registerNode } from './registerNode.ts';

// Two verifiers that judge a registration at the same time each estimate a plain vote; the one
// mined second reaches the quorum, activates the node and records both approvers' work, about
// three times a plain vote's gas. It ran out of gas and was lost (the node stayed Pending until a
// later sweep, behind the daemon's backoff since decision 1834): it is estimated again and sent.

const ETH = 10n ** 18n;
const measurement = keccak256(toHex('concurrent-votes-image'));
const enclaveId = keccak256(toHex('concurrent-votes-enclave'));
let anvil: AnvilInstance;
let operator: FirnClients;
let verifiers: FirnClients[];

const addressOf = (i: number) => privateKeyToAccount(anvil.accounts[i]!.privateKey).address;

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 6 });
  const deployment = await deployTestFirn(anvil, {
    measurements: [{ teeType: 1, measurement }],
    verifiers: [addressOf(2), addressOf(3)],
  });
  const at = (i: number) =>
    createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 20 });
  operator = at(1);
  verifiers = [at(2), at(3)];
  for (const v of verifiers) await joinVerifierSet(v, ETH);
}, 60_000);

afterAll(async () => {
  await anvil?.stop();
});

const rpc = (method: string, params: unknown[] = []) =>
  operator.public.request({ method, params } as never) as Promise<unknown>;

describe('approveNode', () => {
  it('two verifiers voting in the same block both count: the vote that reaches the quorum is not lost to its gas estimate (decision 1834)', async () => {
    const evidenceDigest = keccak256(toHex('digest'));
    await registerNode(operator, {
      enclaveId,
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('concurrent-votes-machine')),
      enclaveAddress: addressOf(4),
      kemPublicKey: keccak256(toHex('kem')),
      endpoint: 'http://127.0.0.1:9001',
      evidenceDigest,
      stake: ETH,
    });
    // Both votes are simulated and estimated on the same state (neither has voted), then mined in
    // one block: the second one in it takes the concluding path.
    await rpc('evm_setAutomine', [false]);
    const votes = verifiers.map((v) => approveNode(v, { enclaveId, round: 1, evidenceDigest }));
    const settled = Promise.allSettled(votes);
    try {
      const until = Date.now() + 20_000;
      for (;;) {
        const pool = (await rpc('txpool_status')) as { pending: string | number };
        if (Number(pool.pending) >= 2) break;
        if (Date.now() > until) throw new Error('the two votes never reached the pool');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
    await rpc('evm_mine');
    const results = await settled;
    expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'cast'))).toEqual([
      'cast',
      'cast',
    ]);
    expect((await getNode(operator, enclaveId)).status).toBe(NodeStatus.Active);
    // The activation recorded both approvers' work in the epoch.
    const { currentEpoch } = await getRewardsState(operator);
    for (const i of [2, 3])
      expect(
        (await getVerifierEpochReward(operator, { epoch: currentEpoch, verifier: addressOf(i) })).points,
      ).toBeGreaterThan(0n);
  }, 60_000);
});
