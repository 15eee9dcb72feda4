import { randomBytes } from 'node:crypto';
import type { RegisterNodeParams, RegistrationEvent } from '@firn/chain';
import { bytesToHex, type Hex, TEE_TYPES } from '@firn/core';
import { VerifierDaemon } from '@firn/verifier';
import { parseEther } from 'viem';
import type { TestNetwork } from '../e2e/network.ts';

/**
 * A verifier daemon (anvil account 2, a network verifier, silent logger) that reads the chain at
 * `rpcUrl` and is driven by hand through `daemon.sweep()`; every registration round its sweep
 * reports lands in `seen`.
 */
export function sweepingVerifier(net: TestNetwork, rpcUrl: string) {
  const daemon = new VerifierDaemon({
    rpcUrl,
    verifierKey: net.anvil.accounts[2]!.privateKey,
    deployment: net.deployment,
    policy: net.policy,
    roots: net.roots,
    logger: { info: () => {}, warn: () => {}, error: () => {} } as never,
    // The test network's nodes listen on 127.0.0.1.
    allowPrivateEndpoints: true,
  });
  const seen: RegistrationEvent[] = [];
  daemon.onRegistration = async (e) => {
    seen.push(e);
  };
  return { daemon, seen };
}

/**
 * registerNode parameters for `enclaveId` on the simulated TEE with the network's bundle
 * measurement, stake 1 ETH, an unreachable endpoint and fresh random platform, enclave address,
 * KEM key and evidence digest (no node serves it: only the chain record matters).
 */
export function simulatedRegistration(net: TestNetwork, enclaveId: Hex): RegisterNodeParams {
  return {
    enclaveId,
    teeType: TEE_TYPES.simulated,
    measurement: net.bundleMeasurement as Hex,
    platformIdHash: bytesToHex(randomBytes(32)) as Hex,
    enclaveAddress: bytesToHex(randomBytes(20)) as Hex,
    kemPublicKey: bytesToHex(randomBytes(32)) as Hex,
    endpoint: 'http://127.0.0.1:1',
    evidenceDigest: bytesToHex(randomBytes(32)) as Hex,
    stake: parseEther('1'),
  };
}
