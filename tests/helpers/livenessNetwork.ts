import { createFirnClients, type FirnClients, getRewardsState } from '@firn/chain';
import type { Hex } from '@firn/core';
import { parseEther } from 'viem';
import { increaseTime, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

/** The liveness test network's epoch length, seconds. */
export const LIVENESS_EPOCH = 30;
/** The liveness test network's answer window (how long a challenged node has to answer), seconds. */
export const LIVENESS_ANSWER_WINDOW = 10;

/** What startLivenessNetwork returns. */
export interface LivenessNetwork {
  net: TestNetwork;
  /** Clients of anvil account `i` on the network (50 ms polling). */
  at: (i: number) => FirnClients;
  /** The Enclave ID of the network's node. */
  enclaveId: Hex;
  /** Moves chain time to the first second of the next rewards epoch; resolves to that epoch. */
  nextEpoch: () => Promise<bigint>;
}

/**
 * A test network for the liveness-challenge tests: epochs of LIVENESS_EPOCH seconds, an answer
 * window of LIVENESS_ANSWER_WINDOW seconds, a rewards pool of 1 ETH, and the verifier daemons' own
 * liveness challengers never started, so that every challenge on chain is one the test issued. Whether the
 * node answers is the test's to decide (the network's node runs no liveness service of its own).
 */
export async function startLivenessNetwork(): Promise<LivenessNetwork> {
  const net = await startTestNetwork({
    epochLength: LIVENESS_EPOCH,
    answerWindow: LIVENESS_ANSWER_WINDOW,
    poolDeposit: parseEther('1'),
    // Never started, rather than stopped once the node is Active: a challenger's pass may already
    // have challenged it then, and that challenge, never answered, is a missed epoch.
    challengeLiveness: false,
  });
  const at = (i: number) =>
    createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[i]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
  const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment, { pollingIntervalMs: 50 });
  const nextEpoch = async (): Promise<bigint> => {
    const st = await getRewardsState(reader);
    const block = await reader.public.getBlock({ blockTag: 'latest' });
    const start = st.genesis + (st.currentEpoch + 1n) * st.epochLength;
    await increaseTime(net.anvil.rpcUrl, Number(start - block.timestamp));
    return (await getRewardsState(reader)).currentEpoch;
  };
  return { net, at, enclaveId: net.node.identity!.enclaveId, nextEpoch };
}
