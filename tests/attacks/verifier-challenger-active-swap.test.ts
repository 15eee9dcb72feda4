/**
 * The verifier's liveness challenger (docs/decisions/1350) lists the Active index only when its
 * size changed, in a new epoch, or every `relistMs` (10 s): "a node that became Active while
 * another left (same index size) is challenged at most 10 s late". On the devnet's epoch clock
 * (15 s epochs, 5 s answer window) challenges are issued only in the first 10 s of an epoch, so
 * a node that became Active in the same block another one left (an operator can time its exit to
 * the approval it sees coming) is never challenged in that epoch: the verifier missed the event.
 */
import { randomBytes } from 'node:crypto';
import {
  approveNode,
  createFirnClients,
  type FirnClients,
  getRewardsState,
  NodeStatus,
  registerNode,
  requestExit,
} from '@firn/chain';
import { bytesToHex, type Hex } from '@firn/core';
import { LivenessChallenger } from '@firn/verifier';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { increaseTime, startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { simulatedRegistration } from '../helpers/verifierSweep.ts';

const EPOCH = 15;
const ANSWER_WINDOW = 5;
let net: TestNetwork;
let operator: FirnClients;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rpc(method: string, params: unknown[] = []): Promise<unknown> {
  const r = await fetch(net.anvil.rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await r.json()) as { result?: unknown }).result;
}

beforeAll(async () => {
  net = await startTestNetwork({
    epochLength: EPOCH,
    answerWindow: ANSWER_WINDOW,
    poolDeposit: parseEther('1'),
  });
  // The network's verifiers are stopped: the votes and the challenges below are the test's own.
  for (const v of net.verifiers) {
    v.liveness?.stop();
    v.stop();
  }
  operator = createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[5]!.privateKey, net.deployment, {
    pollingIntervalMs: 50,
  });
}, 120_000);
afterAll(async () => {
  await net?.stop();
});

describe('liveness challenger and a swap that keeps the Active count', () => {
  it('a node that became Active while another left is challenged in the same epoch', async () => {
    const newcomer = bytesToHex(randomBytes(32)) as Hex;
    const evidenceDigest = bytesToHex(randomBytes(32)) as Hex;
    await registerNode(operator, { ...simulatedRegistration(net, newcomer), evidenceDigest });
    const [v1, v2] = [net.anvil.accounts[2]!, net.anvil.accounts[3]!].map((a) =>
      createFirnClients(net.anvil.rpcUrl, a.privateKey, net.deployment, { pollingIntervalMs: 50 }),
    ) as [FirnClients, FirnClients];
    const nodeOperator = createFirnClients(net.anvil.rpcUrl, net.operator.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const old = net.node.identity!.enclaveId;

    // To the first second of the next epoch; the challenger's first poll lands 1.5 s in (it polls
    // every 2 s) and challenges the one Active node.
    const st = await getRewardsState(operator);
    const block = await operator.public.getBlock({ blockTag: 'latest' });
    await increaseTime(
      net.anvil.rpcUrl,
      Number(st.genesis + (st.currentEpoch + 1n) * st.epochLength - block.timestamp),
    );
    const epochStart = st.genesis + (st.currentEpoch + 1n) * st.epochLength;
    await sleep(1500);
    await rpc('evm_mine');
    const challenger = new LivenessChallenger(
      createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[2]!.privateKey, net.deployment, {
        pollingIntervalMs: 50,
      }),
    );
    await challenger.poll();
    expect(challenger.stats.issued).toBe(1);

    // The swap, in one block: the old node leaves, the newcomer's approval lands.
    await approveNode(v1, { enclaveId: newcomer, round: 1, evidenceDigest });
    await rpc('evm_setAutomine', [false]);
    const exitTx = requestExit(nodeOperator, old);
    const approveTx = approveNode(v2, { enclaveId: newcomer, round: 1, evidenceDigest });
    await sleep(500);
    await rpc('evm_mine');
    await rpc('evm_setAutomine', [true]);
    await Promise.all([exitTx, approveTx]);
    const rec = await operator.public.readContract({
      address: net.deployment.registry,
      abi: (await import('@firn/chain')).firnRegistryAbi,
      functionName: 'getNode',
      args: [newcomer],
    });
    expect(rec.status).toBe(NodeStatus.Active);

    // The challenger keeps polling every 2 s (a block a second, as on the devnet) until the
    // issuance part of the epoch is over.
    for (let i = 0; i < 20; i++) {
      const head = await operator.public.getBlock({ blockTag: 'latest' });
      if (head.timestamp + BigInt(ANSWER_WINDOW) >= epochStart + BigInt(EPOCH)) break;
      await challenger.poll();
      await sleep(1000);
      await rpc('evm_mine');
      await sleep(1000);
      await rpc('evm_mine');
    }
    challenger.stop();
    // The newcomer is Active and eligible for the whole issuance part: it must have been challenged.
    expect(challenger.stats.issued).toBe(2);
  }, 120_000);
});
