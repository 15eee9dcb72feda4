import {
  type AnvilInstance,
  approveNode,
  deployFirn,
  type FirnClients,
  type FirnDeployment,
  joinVerifierSet,
  postJob,
  registerNode,
} from '@firn/chain';
import type { Hex } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const ETH = 10n ** 18n;

/**
 * Test-only: deploys firn on `anvil` for the CLI's job commands (deployer: account 0; stakes and
 * slash 1 ETH, claim bond 0.1 ETH, governance delay 1 s, unbonding 60 s, challenge window 30 s,
 * epoch 1 h, polling 50 ms), with `measurement` allowed for TEE type 1 and account 3 a verifier.
 */
export function deployJobFirn(anvil: AnvilInstance, measurement: Hex): Promise<FirnDeployment> {
  return deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    governanceDelay: 1,
    minNodeStake: ETH,
    minVerifierStake: ETH,
    unbondingPeriod: 60,
    challengeWindow: 30,
    slashAmount: ETH,
    claimBond: ETH / 10n,
    epochLength: 3600,
    measurements: [{ teeType: 1, measurement }],
    verifiers: [anvil.accounts[3]!.address],
    pollingIntervalMs: 50,
  });
}

/**
 * Test-only: account 3 joins the verifier set (1 ETH), account 1 registers node `enclaveId` (TEE
 * type 1, `measurement`, enclave key: account 5's address, stake 1 ETH, serving at `endpoint`,
 * evidence digest keccak256(`tag`-evidence)), and account 3 approves it. `at(i)`: clients of account i.
 */
export async function registerApprovedNode(
  anvil: AnvilInstance,
  at: (i: number) => FirnClients,
  node: { enclaveId: Hex; measurement: Hex; endpoint: string; tag: string },
): Promise<void> {
  const evidenceDigest = keccak256(toHex(`${node.tag}-evidence`));
  await joinVerifierSet(at(3), ETH);
  await registerNode(at(1), {
    enclaveId: node.enclaveId,
    teeType: 1,
    measurement: node.measurement,
    platformIdHash: keccak256(toHex('machine-1')),
    enclaveAddress: privateKeyToAccount(anvil.accounts[5]!.privateKey).address,
    kemPublicKey: keccak256(toHex('kem')),
    endpoint: node.endpoint,
    evidenceDigest,
    stake: ETH,
  });
  await approveNode(at(3), { enclaveId: node.enclaveId, round: 1, evidenceDigest });
}

/**
 * Test-only: posts an Open job from `requester` (TEE type 1, any measurement, escrow 1 ETH, deadline
 * an hour past the latest block, `claimTimeout` seconds, default 600). Returns its job id.
 */
export async function postOpenJob(requester: FirnClients, claimTimeout = 600n): Promise<Hex> {
  const block = await requester.public.getBlock();
  const { jobId } = await postJob(requester, {
    teeTypeMask: 1 << 1,
    allowedMeasurements: [],
    workloadHash: keccak256(toHex('model')),
    inputCommitment: keccak256(toHex('inputs')),
    deadline: block.timestamp + 3600n,
    claimTimeout,
    escrow: ETH,
  });
  return jobId;
}
