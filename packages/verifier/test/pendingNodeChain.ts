import {
  type AnvilInstance,
  createFirnClients,
  deployFirn,
  type FirnClients,
  type FirnDeployment,
  joinVerifierSet,
  registerNode,
  startAnvil,
} from '@firn/chain';
import type { Hex } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

/** One ether in wei: the node stake; a verifier stakes half of it. */
export const ETH = 10n ** 18n;
/** viem's polling interval for these tests' clients (ms): short, the chain is a local anvil. */
export const POLL = { pollingIntervalMs: 50 };

/** A local anvil with the Firn contracts deployed on it, as `startVerifierChain` returns it. */
export interface VerifierChain {
  anvil: AnvilInstance;
  deployment: FirnDeployment;
}

/**
 * Starts an anvil (5 accounts) and deploys Firn on it as the verifier daemon's tests need it:
 * account 0 deploys and governs (delay 1 s), account 2 is the only allowed verifier, node stake
 * 1 ether, verifier stake 0.5, and `measurement` is the one allow-listed measurement of TEE type 1
 * (simulated). The caller stops `anvil`.
 */
export async function startVerifierChain(measurement: Hex): Promise<VerifierChain> {
  const anvil = await startAnvil({ accounts: 5 });
  const deployment = await deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    minNodeStake: ETH,
    minVerifierStake: ETH / 2n,
    governanceDelay: 1,
    epochLength: 3600,
    unbondingPeriod: 3600,
    challengeWindow: 600,
    slashAmount: ETH / 2n,
    measurements: [{ teeType: 1, measurement }],
    verifiers: [privateKeyToAccount(anvil.accounts[2]!.privateKey).address],
    ...POLL,
  });
  return { anvil, deployment };
}

/** What `registerPendingNode` leaves: the clients and keys a test goes on with. */
export interface PendingNode {
  /** Account 0's clients (the deployer, which governs). */
  gov: FirnClients;
  /** Account 2's private key: a member of the verifier set, staked 0.5 ether. */
  verifierKey: Hex;
  /** keccak256 of the label the node was registered under. */
  enclaveId: Hex;
}

/**
 * On `chain`, account 2 joins the verifier set (unless `join` is false: it already did), then account 1 registers a node (enclave id
 * keccak256(`label`), TEE type 1, `measurement`, account 4's address as its enclave key, stake 1
 * ether) whose round stays Pending: nobody votes. Its endpoint is `http://127.0.0.1:9`, where
 * nothing listens: a real fetch of its evidence meets a node that is down.
 */
export async function registerPendingNode(
  { anvil, deployment }: VerifierChain,
  measurement: Hex,
  label: string,
  { join = true }: { join?: boolean } = {},
): Promise<PendingNode> {
  const gov = createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deployment, POLL);
  const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[1]!.privateKey, deployment, POLL);
  const verifierKey = anvil.accounts[2]!.privateKey;
  if (join) await joinVerifierSet(createFirnClients(anvil.rpcUrl, verifierKey, deployment, POLL), ETH / 2n);
  const enclaveId = keccak256(toHex(label));
  await registerNode(operator, {
    enclaveId,
    teeType: 1,
    measurement,
    enclaveAddress: privateKeyToAccount(anvil.accounts[4]!.privateKey).address,
    kemPublicKey: keccak256(toHex('kem')),
    endpoint: 'http://127.0.0.1:9',
    evidenceDigest: keccak256(toHex('evidence')),
    platformIdHash: keccak256(toHex('platform')),
    stake: ETH,
  });
  return { gov, verifierKey, enclaveId };
}
