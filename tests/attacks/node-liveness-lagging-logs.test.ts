/**
 * The node's liveness poll (docs/decisions/1350) reads the head with eth_blockNumber, scans
 * ChallengeIssued from its cursor to that head and moves the cursor past it. Behind an RPC that
 * lags (a load-balanced endpoint whose log index is a few blocks behind the backend answering
 * eth_blockNumber: its eth_getLogs returns the logs it has, up to its own head, without an error)
 * the challenge issued in those blocks is scanned over once, found empty, and never looked at
 * again: the honest node misses a challenge it could have answered in time.
 */
import { createFirnClients, getChallenge, getRewardsState, issueChallenge } from '@firn/chain';
import { LivenessService } from '@firn/node';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laggingLogsProxy } from './laggingRpcProxy.ts';
import { increaseTime, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

let net: TestNetwork;
let proxy: Awaited<ReturnType<typeof laggingLogsProxy>>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  net = await startTestNetwork({
    epochLength: 60,
    answerWindow: 20,
    poolDeposit: parseEther('1'),
    challengeLiveness: false,
  });
  proxy = await laggingLogsProxy(net.anvil.rpcUrl);
}, 120_000);
afterAll(async () => {
  proxy?.server.close();
  await net?.stop();
});

describe("the node's liveness poll behind a log index that lags", () => {
  it('a challenge issued while the log index lagged is still answered before its deadline', async () => {
    const operator = createFirnClients(net.anvil.rpcUrl, net.operator.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    // To the start of the next epoch, so the challenge leaves the node its full answer window.
    const st = await getRewardsState(operator);
    const block = await operator.public.getBlock({ blockTag: 'latest' });
    await increaseTime(
      net.anvil.rpcUrl,
      Number(st.genesis + (st.currentEpoch + 1n) * st.epochLength - block.timestamp),
    );
    const service = new LivenessService(net.node, {
      rpcUrl: proxy.url,
      operatorKey: net.operator.privateKey,
      deployment: net.deployment,
      logger: net.node.opts.logger,
      pollIntervalMs: 100,
      claimRewards: false,
    });
    service.start();
    try {
      await sleep(1000); // caught up from the deployment block
      // The log index stops at the current head; a challenge comes in meanwhile.
      proxy.state.lagTo = await operator.public.getBlockNumber({ cacheTime: 0 });
      const verifier = createFirnClients(
        net.anvil.rpcUrl,
        net.anvil.accounts[2]!.privateKey,
        net.deployment,
        {
          pollingIntervalMs: 50,
        },
      );
      const { challenge } = await issueChallenge(verifier, net.node.identity!.enclaveId);
      await sleep(1500); // the node polls over the challenge's block several times
      proxy.state.lagTo = undefined; // the index caught up, well inside the 20 s answer window
      const until = Date.now() + 10_000;
      // The chain goes on producing blocks (a block a second, as on any live chain).
      while (service.stats.answered === 0 && Date.now() < until) {
        await fetch(net.anvil.rpcUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'evm_mine', params: [] }),
        });
        await sleep(1000);
      }
      expect((await getChallenge(operator, challenge.challengeId)).answered).toBe(true);
    } finally {
      service.stop();
    }
  }, 120_000);
});
