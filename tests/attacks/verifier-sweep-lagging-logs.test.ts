/**
 * The verifier's vote sweep (docs/decisions/1350) scans NodeRegistered from its cursor to the head
 * it read and moves the cursor past it. Behind an RPC whose log index lags the head it reports
 * (eth_getLogs answers up to its own head, without an error), a registration in those blocks is
 * scanned over once and never seen again by the sweep: the round it opened is never voted on by
 * this verifier unless its event watcher caught it.
 */
import { randomBytes } from 'node:crypto';
import { createFirnClients, registerNode } from '@firn/chain';
import { bytesToHex, type Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { laggingLogsProxy } from './laggingRpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { simulatedRegistration, sweepingVerifier } from '../helpers/verifierSweep.ts';

let net: TestNetwork;
let proxy: Awaited<ReturnType<typeof laggingLogsProxy>>;

beforeAll(async () => {
  net = await startTestNetwork();
  for (const v of net.verifiers) v.stop();
  proxy = await laggingLogsProxy(net.anvil.rpcUrl);
}, 120_000);
afterAll(async () => {
  proxy?.server.close();
  await net?.stop();
});

describe('vote sweep behind a log index that lags', () => {
  it('a registration in blocks the log index had not reached is still found once it caught up', async () => {
    const operator = createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[5]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const { daemon, seen } = sweepingVerifier(net, proxy.url);
    await daemon.sweep(); // caught up from the deployment block
    proxy.state.lagTo = await operator.public.getBlockNumber({ cacheTime: 0 });
    const enclaveId = bytesToHex(randomBytes(32)) as Hex;
    await registerNode(operator, simulatedRegistration(net, enclaveId));
    await daemon.sweep(); // the index has not reached the registration's block yet
    proxy.state.lagTo = undefined;
    // The chain goes on producing blocks; the next sweeps must find the open round.
    for (let i = 0; i < 3; i++) {
      await rpcCall(net.anvil.rpcUrl, 'evm_mine', []);
      await daemon.sweep();
    }
    expect(seen.map((e) => e.enclaveId.toLowerCase())).toContain(enclaveId.toLowerCase());
  }, 120_000);
});
