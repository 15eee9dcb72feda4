import { InvalidInputError } from '@firn/core';
import type { Abi, Address, Hex } from 'viem';
import {
  firnDataLedgerAbi,
  firnDataLedgerBytecode,
  firnJobMarketAbi,
  firnJobMarketBytecode,
  firnRegistryAbi,
  firnRegistryBytecode,
  firnVerifierSetAbi,
  firnVerifierSetBytecode,
} from './abi/generated.ts';
import { toChainError } from './ChainRevertedError.ts';
import { createFirnClients, requireWallet } from './clients.ts';
import type { FirnDeployment } from './types.ts';
import { writeContractAndWait } from './writeContractAndWait.ts';

export interface DeployFirnParams {
  rpcUrl: string;
  /** Deploys and becomes the owner (governance) of every contract. */
  deployerKey: Hex;
  minNodeStake: bigint;
  minVerifierStake: bigint;
  verifierThreshold: number;
  /** Seconds, for node and verifier exits. */
  unbondingPeriod: number;
  /** Seconds after a proof during which verifiers may dispute it. */
  challengeWindow: number;
  /** Taken from a node's stake when a dispute reaches the quorum (capped at its stake). */
  slashAmount: bigint;
  /** Receipt polling, ms (default 1000; 50 suits a local anvil). */
  pollingIntervalMs?: number;
}

/**
 * Deploy the verifier set, registry, job market and data ledger, and make the job market the
 * registry's slasher. The deployer owns all of them.
 */
export async function deployFirn(params: DeployFirnParams): Promise<FirnDeployment> {
  if (
    !Number.isInteger(params.verifierThreshold) ||
    params.verifierThreshold < 1 ||
    params.verifierThreshold > 0xffff
  )
    throw new InvalidInputError('verifierThreshold must be an integer in 1..65535');
  for (const [k, v] of [
    ['unbondingPeriod', params.unbondingPeriod],
    ['challengeWindow', params.challengeWindow],
  ] as const)
    if (!Number.isInteger(v) || v < 0)
      throw new InvalidInputError(`${k} must be a non-negative integer of seconds`);

  const probe = createFirnClients(params.rpcUrl, undefined, placeholder(0), pollOpts(params));
  const chainId = await probe.public.getChainId();
  const clients = createFirnClients(
    params.rpcUrl,
    params.deployerKey,
    placeholder(chainId),
    pollOpts(params),
  );
  const wallet = requireWallet(clients);
  const owner = wallet.account.address;

  const deploy = async (name: string, abi: Abi, bytecode: Hex, args: readonly unknown[]) => {
    try {
      const hash = await wallet.deployContract({
        abi,
        bytecode,
        args,
        account: wallet.account,
        chain: wallet.chain,
      });
      const receipt = await clients.public.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success' || !receipt.contractAddress)
        throw new Error(`deployment of ${name} failed in block ${receipt.blockNumber}`);
      return { address: receipt.contractAddress as Address, block: receipt.blockNumber };
    } catch (e) {
      throw toChainError(e, `deploy ${name}`);
    }
  };

  const vs = await deploy('FirnVerifierSet', firnVerifierSetAbi, firnVerifierSetBytecode, [
    owner,
    params.minVerifierStake,
    params.verifierThreshold,
    BigInt(params.unbondingPeriod),
  ]);
  const reg = await deploy('FirnRegistry', firnRegistryAbi, firnRegistryBytecode, [
    owner,
    vs.address,
    params.minNodeStake,
    BigInt(params.unbondingPeriod),
  ]);
  const market = await deploy('FirnJobMarket', firnJobMarketAbi, firnJobMarketBytecode, [
    owner,
    reg.address,
    vs.address,
    BigInt(params.challengeWindow),
    params.slashAmount,
  ]);
  const ledger = await deploy('FirnDataLedger', firnDataLedgerAbi, firnDataLedgerBytecode, [reg.address]);
  await writeContractAndWait(clients, {
    address: reg.address,
    abi: firnRegistryAbi,
    functionName: 'setSlasher',
    args: [market.address],
  });
  return {
    chainId,
    registry: reg.address,
    verifierSet: vs.address,
    jobMarket: market.address,
    dataLedger: ledger.address,
    deployBlock: vs.block,
  };
}

function pollOpts(p: DeployFirnParams): { pollingIntervalMs?: number } {
  return p.pollingIntervalMs === undefined ? {} : { pollingIntervalMs: p.pollingIntervalMs };
}

function placeholder(chainId: number): FirnDeployment {
  const zero = '0x0000000000000000000000000000000000000000';
  return { chainId, registry: zero, verifierSet: zero, jobMarket: zero, dataLedger: zero, deployBlock: 0n };
}
