/**
 * A registration round in which every member that can still vote has voted, and that passes only
 * because stake left afterwards, can no longer be concluded by a vote (decision 1720's known limit).
 * The verifier's sweep concludes it through the registry's concludeRound (decision 1755); while the
 * round is still short of the bar, the sweep sends nothing.
 */
import { randomBytes } from 'node:crypto';
import {
  approveNode,
  createFirnClients,
  getNode,
  leaveVerifierSet,
  NodeStatus,
  registerNode,
  requireWallet,
} from '@firn/chain';
import { bytesToHex, type Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { simulatedRegistration, sweepingVerifier } from '../helpers/verifierSweep.ts';

let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
  // The network's own daemons would vote the registration through: stopped, so the round stays open.
  for (const v of net.verifiers) v.stop();
}, 120_000);
afterAll(async () => {
  await net?.stop();
});

describe('vote sweep and a round decided after its last vote', () => {
  it('concludes the round once the member that had not voted left, and not before', async () => {
    const clientsOf = (i: number) =>
      createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[i]!.privateKey, net.deployment, {
        pollingIntervalMs: 50,
      });
    const operator = clientsOf(5);
    const voter = clientsOf(2); // the sweeping verifier's account
    const silent = clientsOf(3); // the network's other verifier
    const enclaveId = bytesToHex(randomBytes(32)) as Hex;
    const params = simulatedRegistration(net, enclaveId);
    await registerNode(operator, params);
    // 1 of the 2 ether: not above 2/3.
    await approveNode(voter, { enclaveId, round: 1, evidenceDigest: params.evidenceDigest });

    const { daemon, seen } = sweepingVerifier(net, net.anvil.rpcUrl);
    const txBefore = await voter.public.getTransactionCount({
      address: requireWallet(voter).account.address,
    });
    await daemon.sweep();
    expect((await getNode(voter, enclaveId)).status).toBe(NodeStatus.Pending);
    expect(await voter.public.getTransactionCount({ address: requireWallet(voter).account.address })).toBe(
      txBefore,
    );
    expect(seen.filter((e) => e.enclaveId.toLowerCase() === enclaveId.toLowerCase())).toEqual([]);

    // The member that never voted leaves: 1 of the 1 ether that can still vote passes 2/3, and
    // every member left has voted.
    await leaveVerifierSet(silent);
    expect((await getNode(voter, enclaveId)).status).toBe(NodeStatus.Pending);
    await daemon.sweep();
    expect((await getNode(voter, enclaveId)).status).toBe(NodeStatus.Active);
  }, 120_000);
});
