/**
 * What the background pollers ask the chain (docs/decisions/1350-chain-reads-per-job.md), on a
 * real anvil with the real contracts and a node whose enclave runs on the simulated TEE. Every
 * poller here talks to anvil through a counting proxy, so each test asserts both sides: the poll
 * no longer makes the reads it made before (the head block on every node poll, the whole registry
 * and its event history on every verifier poll), and it still does its duty (a challenge issued
 * while the node polls slowly is seen and answered before its deadline; each Active node is
 * challenged once an epoch; a requester naming a node by Enclave ID at another endpoint is refused).
 */
import type { Server } from 'node:http';
import {
  createFirnClients,
  type FirnClients,
  getChallenge,
  getRewardsState,
  issueChallenge,
  registerNode,
} from '@firn/chain';
import { randomBytes } from 'node:crypto';
import { attestNode } from '@firn/client';
import { bytesToHex, type Hex } from '@firn/core';
import { LivenessService } from '@firn/node';
import { LivenessChallenger } from '@firn/verifier';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewritingRpcProxy } from '../../packages/chain/test/rpcProxy.ts';
import { simulatedRegistration, sweepingVerifier } from '../helpers/verifierSweep.ts';
import { increaseTime, startTestNetwork, type TestNetwork } from './network.ts';

const EPOCH = 30;
const ANSWER_WINDOW = 10;
let net: TestNetwork;
let proxy: { url: string; counts: Map<string, number>; logsFrom: bigint[]; server: Server };
let operator: FirnClients;
let enclaveId: Hex;

/** A JSON-RPC proxy in front of anvil that counts the methods it forwards (batches included). */
async function countingProxy(target: string) {
  const counts = new Map<string, number>();
  /** fromBlock of each eth_getLogs forwarded. */
  const logsFrom: bigint[] = [];
  const p = await rewritingRpcProxy(target, (m) => {
    counts.set(m.method ?? '?', (counts.get(m.method ?? '?') ?? 0) + 1);
    const from = (m.params?.[0] as { fromBlock?: string } | undefined)?.fromBlock;
    if (m.method === 'eth_getLogs' && typeof from === 'string') logsFrom.push(BigInt(from));
    return undefined;
  });
  return { ...p, counts, logsFrom };
}

const count = (m: string) => proxy.counts.get(m) ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Move chain time to the first second of the next epoch. */
async function nextEpoch(): Promise<void> {
  const st = await getRewardsState(operator);
  const block = await operator.public.getBlock({ blockTag: 'latest' });
  await increaseTime(
    net.anvil.rpcUrl,
    Number(st.genesis + (st.currentEpoch + 1n) * st.epochLength - block.timestamp),
  );
}

beforeAll(async () => {
  net = await startTestNetwork({
    epochLength: EPOCH,
    answerWindow: ANSWER_WINDOW,
    poolDeposit: parseEther('1'),
    // The in-process verifiers' own challengers never run: the chain stays quiet between the
    // transactions each test sends itself.
    challengeLiveness: false,
  });
  proxy = await countingProxy(net.anvil.rpcUrl);
  operator = createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[4]!.privateKey, net.deployment, {
    pollingIntervalMs: 50,
  });
  enclaveId = net.node.identity!.enclaveId;
}, 120_000);
afterAll(async () => {
  proxy?.server.close();
  await net?.stop();
});

describe('chain reads of the background pollers', () => {
  it("the node's liveness poll reads only the head on an idle chain, checks its credits once per interval, and still answers a challenge in time", async () => {
    await nextEpoch();
    const service = new LivenessService(net.node, {
      rpcUrl: proxy.url,
      operatorKey: net.operator.privateKey,
      deployment: net.deployment,
      logger: net.node.opts.logger,
      pollIntervalMs: 100,
      withdrawIntervalMs: 60_000,
    });
    service.start();
    try {
      // The first poll catches up from the deployment block and checks the credits once.
      await sleep(1000);
      proxy.counts.clear();
      await sleep(2000);
      const polls = count('eth_blockNumber');
      expect(polls).toBeGreaterThanOrEqual(5);
      // No challenge: the head block itself is never fetched, no log scan while the head stays,
      // and the three credit balances (registry, market, rewards) are not read again inside the
      // withdrawal interval (before: a block, a scan and three balances on every poll).
      expect(count('eth_getBlockByNumber')).toBe(0);
      expect(count('eth_getLogs')).toBe(0);
      expect(count('eth_call')).toBe(0);

      // The duty: a challenge issued now is seen by the slower-reading poller and answered.
      const verifier = createFirnClients(
        net.anvil.rpcUrl,
        net.anvil.accounts[2]!.privateKey,
        net.deployment,
        {
          pollingIntervalMs: 50,
        },
      );
      const { challenge } = await issueChallenge(verifier, enclaveId);
      const until = Date.now() + 15_000;
      while (service.stats.answered === 0 && Date.now() < until) await sleep(100);
      expect(service.stats.answered).toBe(1);
      const onChain = await getChallenge(operator, challenge.challengeId);
      expect(onChain.answered).toBe(true);
      expect(service.stats.missed).toBe(0);
    } finally {
      service.stop();
    }
  }, 60_000);

  it("the verifier's challenger reads the epoch and the Active index per poll, not every node's record and history, and still challenges each Active node once an epoch", async () => {
    await nextEpoch();
    const verifier = createFirnClients(proxy.url, net.anvil.accounts[3]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const challenger = new LivenessChallenger(verifier);
    try {
      await challenger.poll(); // first poll: reads the epoch clock, issues this epoch's challenge
      expect(challenger.stats.issued).toBe(1);
      proxy.counts.clear();
      const polls = 5;
      for (let i = 0; i < polls; i++) await challenger.poll();
      // Once an epoch: nothing new issued.
      expect(challenger.stats.issued).toBe(1);
      // Per poll: currentEpoch, the Active index's size, getChallenge (the open one) and the head
      // block. No event scan (a node's published key and endpoint, read from the registry's events
      // since deployment, is not needed to challenge it), no rewards state, no listing of an
      // index whose size did not change.
      expect(count('eth_getLogs')).toBe(0);
      expect(count('eth_call')).toBeLessThanOrEqual(3 * polls);
      expect(count('eth_getBlockByNumber')).toBeLessThanOrEqual(polls);
      expect(count('eth_sendRawTransaction')).toBe(0);
    } finally {
      challenger.stop();
    }
  }, 60_000);

  it('a requester naming a node by Enclave ID at an endpoint it is not registered at is refused before any evidence is fetched', async () => {
    const requester = createFirnClients(proxy.url, net.requester.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const base = { policy: net.policy, roots: net.roots, now: Math.floor(Date.now() / 1000), enclaveId };
    const err = await attestNode(requester, { ...base, node: 'http://127.0.0.1:1/' }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code).toBe('E_INVALID_INPUT');
    expect(err?.message).toMatch(/not at http:\/\/127\.0\.0\.1:1/);
    // The same Enclave ID at its registered endpoint is attested, reading that node's record only.
    proxy.counts.clear();
    const node = await attestNode(requester, { ...base, node: net.node.url });
    expect(node.enclaveId.toLowerCase()).toBe(enclaveId.toLowerCase());
    expect(proxy.counts.get('eth_call') ?? 0).toBeGreaterThan(0);
  }, 60_000);

  // Last: it stops the network's own verifiers so a registration stays Pending.
  it("the verifier's vote sweep scans only new blocks for registrations and still finds a round it has not voted in", async () => {
    for (const v of net.verifiers) v.stop();
    const c = createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[5]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const pending = bytesToHex(randomBytes(32)) as Hex;
    await registerNode(c, simulatedRegistration(net, pending));
    const { daemon, seen } = sweepingVerifier(net, proxy.url);
    proxy.counts.clear();
    proxy.logsFrom.length = 0;
    await daemon.sweep();
    // The first sweep scans from the deployment block once and finds the open round.
    expect(proxy.logsFrom).toEqual([net.deployment.deployBlock]);
    expect(seen.map((e) => e.enclaveId.toLowerCase())).toContain(pending.toLowerCase());
    expect(seen.find((e) => e.enclaveId.toLowerCase() === pending.toLowerCase())?.kind).toBe('registered');
    // The next sweep, with no new block, scans nothing and still finds the round (not voted yet).
    seen.length = 0;
    proxy.logsFrom.length = 0;
    await daemon.sweep();
    expect(proxy.logsFrom).toEqual([]);
    expect(seen.map((e) => e.enclaveId.toLowerCase())).toContain(pending.toLowerCase());
    // After a new block, only the blocks since the last sweep are scanned, and the 32 before them
    // again (a log index that lags returns fewer logs, not an error).
    const before = await c.public.getBlockNumber({ cacheTime: 0 });
    await increaseTime(net.anvil.rpcUrl, 1);
    await daemon.sweep();
    expect(proxy.logsFrom.length).toBe(1);
    const back = before + 1n - 32n;
    expect(proxy.logsFrom[0]).toBe(back > net.deployment.deployBlock ? back : net.deployment.deployBlock);
  }, 60_000);
});
