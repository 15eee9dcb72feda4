/**
 * The verifier's vote sweep (docs/decisions/1350) scans NodeRegistered only over the blocks since
 * its last sweep and drops an Enclave ID whose record reads Exited/Rejected/Slashed "until
 * registered again". Behind an RPC that lags (a load-balanced endpoint whose eth_call backend is a
 * few blocks behind the one that answers eth_blockNumber/eth_getLogs), the sweep sees the
 * re-registration's NodeRegistered but reads the record as it was before it (Exited), drops the
 * ID and moves its cursor past the event: once the RPC has caught up, no later sweep ever finds
 * the open round, so a re-registered node is never voted on by this verifier's sweep.
 */
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createFirnClients, type RegistrationEvent, registerNode, requestExit } from '@firn/chain';
import { bytesToHex, type Hex, TEE_TYPES } from '@firn/core';
import { VerifierDaemon } from '@firn/verifier';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewritingRpcProxy } from './laggingRpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

let net: TestNetwork;
let proxy: { url: string; server: Server; lagTo: bigint | undefined };

/**
 * A JSON-RPC proxy in front of anvil whose eth_call backend lags: while `lagTo` is set, an eth_call
 * at "latest" is answered at block `lagTo`, and one at a later block number fails as a lagging node
 * would ("header not found"). Every other method reaches the up-to-date anvil.
 */
async function laggingProxy(target: string) {
  const state = { lagTo: undefined as bigint | undefined };
  const p = await rewritingRpcProxy(target, (m) => {
    if (state.lagTo === undefined || m.method !== 'eth_call' || !Array.isArray(m.params)) return undefined;
    const tag = m.params[1];
    if (tag === undefined || tag === 'latest' || tag === 'pending')
      m.params[1] = `0x${state.lagTo.toString(16)}`;
    else if (typeof tag === 'string' && tag.startsWith('0x') && BigInt(tag) > state.lagTo)
      return { jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'header not found' } };
    return undefined;
  });
  return {
    ...p,
    get lagTo() {
      return state.lagTo;
    },
    set lagTo(v: bigint | undefined) {
      state.lagTo = v;
    },
  };
}

beforeAll(async () => {
  net = await startTestNetwork();
  // The network's own verifiers would vote the registrations through: stopped, so rounds stay open.
  for (const v of net.verifiers) v.stop();
  proxy = await laggingProxy(net.anvil.rpcUrl);
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
    const params = () => ({
      enclaveId,
      teeType: TEE_TYPES.simulated,
      measurement: net.bundleMeasurement,
      platformIdHash: bytesToHex(randomBytes(32)) as Hex,
      enclaveAddress: bytesToHex(randomBytes(20)) as Hex,
      kemPublicKey: bytesToHex(randomBytes(32)) as Hex,
      endpoint: 'http://127.0.0.1:1',
      evidenceDigest: bytesToHex(randomBytes(32)) as Hex,
      stake: parseEther('1'),
    });
    // Register, withdraw the registration (Pending -> Exited), register the same Enclave ID again.
    await registerNode(operator, params());
    await requestExit(operator, enclaveId);
    const exitedAt = await operator.public.getBlockNumber({ cacheTime: 0 });
    await registerNode(operator, params());

    const daemon = new VerifierDaemon({
      rpcUrl: proxy.url,
      verifierKey: net.anvil.accounts[2]!.privateKey,
      deployment: net.deployment,
      policy: net.policy,
      roots: net.roots,
      logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    });
    const seen: RegistrationEvent[] = [];
    daemon.onRegistration = async (e) => {
      seen.push(e);
    };
    // The eth_call backend is one block behind: it has the exit, not the new registration yet.
    proxy.lagTo = exitedAt;
    await daemon.sweep();
    // The RPC catches up; the next sweeps must find the open round (round 2, Pending).
    proxy.lagTo = undefined;
    await daemon.sweep();
    await daemon.sweep();
    const found = seen.filter((e) => e.enclaveId.toLowerCase() === enclaveId.toLowerCase());
    expect(found.map((e) => [e.kind, e.round])).toContainEqual(['registered', 2]);
  }, 120_000);
});
