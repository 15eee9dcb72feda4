/**
 * The verifier's vote sweep (docs/decisions/1350) scans NodeRegistered only over the blocks since
 * its last sweep and drops an Enclave ID whose record reads Exited/Rejected/Slashed "until
 * registered again". Behind an RPC that lags (a load-balanced endpoint whose eth_call backend is a
 * few blocks behind the one that answers eth_blockNumber/eth_getLogs), the sweep sees the
 * re-registration's NodeRegistered but reads the record as it was before it (Exited), drops the
 * ID and moves its cursor past the event: once the RPC has caught up, no later sweep ever finds
 * the open round, so a re-registered node is never voted on by this verifier's sweep.
 */
import { randomBytes } from 'node:crypto';
import { createFirnClients, registerNode, requestExit } from '@firn/chain';
import { bytesToHex, type Hex } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laggingCallProxy } from './laggingRpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { simulatedRegistration, sweepingVerifier } from '../helpers/verifierSweep.ts';

let net: TestNetwork;
// An RPC whose eth_call backend lags the one answering eth_blockNumber/eth_getLogs (laggingCallProxy).
let proxy: Awaited<ReturnType<typeof laggingCallProxy>>;

beforeAll(async () => {
  net = await startTestNetwork();
  // The network's own verifiers would vote the registrations through: stopped, so rounds stay open.
  for (const v of net.verifiers) v.stop();
  proxy = await laggingCallProxy(net.anvil.rpcUrl);
}, 120_000);
afterAll(async () => {
  proxy?.server.close();
  await net?.stop();
});

describe('vote sweep behind an RPC that lags', () => {
  it('a re-registration read at a lagging block is still voted on once the RPC caught up', async () => {
    const operator = createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[5]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const enclaveId = bytesToHex(randomBytes(32)) as Hex;
    // Register, withdraw the registration (Pending -> Exited), register the same Enclave ID again.
    await registerNode(operator, simulatedRegistration(net, enclaveId));
    await requestExit(operator, enclaveId);
    const exitedAt = await operator.public.getBlockNumber({ cacheTime: 0 });
    await registerNode(operator, simulatedRegistration(net, enclaveId));

    const { daemon, seen } = sweepingVerifier(net, proxy.url);
    // The eth_call backend is one block behind: it has the exit, not the new registration yet.
    proxy.state.lagTo = exitedAt;
    await daemon.sweep();
    // The RPC catches up; the next sweeps must find the open round (round 2, Pending).
    proxy.state.lagTo = undefined;
    await daemon.sweep();
    await daemon.sweep();
    const found = seen.filter((e) => e.enclaveId.toLowerCase() === enclaveId.toLowerCase());
    expect(found.map((e) => [e.kind, e.round])).toContainEqual(['registered', 2]);
  }, 120_000);
});
