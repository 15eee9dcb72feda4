import { InvalidInputError, TEE_TYPES } from '@firn/core';
import { type Abi, type Address, encodeDeployData, getAddress, type Hex } from 'viem';
import {
  firnDataLedgerAbi,
  firnDataLedgerBytecode,
  firnGovernanceAbi,
  firnGovernanceBytecode,
  firnJobMarketAbi,
  firnJobMarketAdminAbi,
  firnJobMarketAdminBytecode,
  firnJobMarketBytecode,
  firnJobMarketLinkReferences,
  firnRegistryAbi,
  firnRegistryBytecode,
  firnRewardsAbi,
  firnRewardsBytecode,
  firnVerifierSetAbi,
  firnVerifierSetBytecode,
} from './abi/generated.ts';
import { toChainError } from './ChainRevertedError.ts';
import { createFirnClients, requireWallet } from './clients.ts';
import { linkBytecode } from './linkBytecode.ts';
import { DEVNET_TEE_TYPES, type FirnDeployment, PRODUCTION_TEE_TYPES } from './types.ts';
import { assertAddress, assertBytes32, assertUint } from './validate.ts';
import {
  feesWithinCeiling,
  gasWithinCap,
  sendFilledWithinCaps,
  writeContractAndWait,
} from './writeContractAndWait.ts';

/** Shortest timelock delay a production deployment accepts: one day, so a change can be seen and answered. */
export const MIN_PRODUCTION_GOVERNANCE_DELAY = 86_400;

export interface DeployFirnParams {
  rpcUrl: string;
  /** Deploys and bootstraps the contracts, then hands every one of them to the timelock. */
  deployerKey: Hex;
  /**
   * 'production' accepts only SGX and TDX (the registry's TEE-type mask clears the simulated
   * type, and a simulated measurement is refused here), and a timelock delay of at least one day.
   * 'devnet' (default) accepts the simulated TEE and any delay.
   */
  profile?: 'devnet' | 'production';
  /** Seconds between scheduling and executing a governance operation (devnet: a few seconds). */
  governanceDelay: number;
  /** May schedule (and cancel) governance operations; default: the deployer. */
  proposers?: readonly Address[];
  /** May execute ready operations; default: the deployer. The zero address lets anyone. */
  executors?: readonly Address[];
  /** May pause and revoke measurements at once (never unpause); default none. */
  guardian?: Address;
  /** Wei. */
  minNodeStake: bigint;
  minVerifierStake: bigint;
  /** Seconds, for node and verifier exits. */
  unbondingPeriod: number;
  /** Seconds after a proof during which verifiers may dispute it. */
  challengeWindow: number;
  /** Taken from a node's stake when a verifier quorum upholds a finding (capped at its stake), wei. */
  slashAmount: bigint;
  /** Posted with every claim; forfeited to the governance treasury when the claim lapses (default 0.01 ether). */
  claimBond?: bigint;
  /** Taken from a verifier whose fact dispute the contract disproves (default slashAmount / 2). */
  falseDisputeSlash?: bigint;
  /** Non-refundable, paid into the reward pool with every registration and key rotation (default 0). */
  registrationFee?: bigint;
  /** Share of each job's escrow paid into the reward pool at finalize, basis points (default 0, max 1000). */
  protocolFeeBps?: number;
  /** Seconds per reward epoch (default 3600). */
  epochLength: number;
  /** Seconds a node has to answer a liveness challenge (default epochLength / 4, at least 1). */
  answerWindow?: number;
  /** Answers per node per epoch that count (default 1). */
  livenessTarget?: number;
  /** Share of the undistributed pool paid out per epoch, basis points (default 1000). */
  epochBudgetBps?: number;
  /** Verifiers' share of an epoch's budget, basis points (default 2000, max 5000). */
  verifierShareBps?: number;
  /** Allow-listed at bootstrap, before the timelock owns the registry. */
  measurements?: readonly { teeType: number; measurement: Hex }[];
  /** Admitted to the verifier set at bootstrap (they still join with their own stake). */
  verifiers?: readonly Address[];
  /** Wei the deployer puts into the reward pool at bootstrap (default 0). */
  poolDeposit?: bigint;
  /** Receipt polling, ms (default 1000; 50 suits a local anvil). */
  pollingIntervalMs?: number;
}

function checkParams(p: DeployFirnParams): void {
  const seconds = (k: string, v: number | undefined, min = 0) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v >= 2 ** 63))
      throw new InvalidInputError(`${k} must be an integer of seconds >= ${min}`);
  };
  seconds('unbondingPeriod', p.unbondingPeriod);
  seconds('challengeWindow', p.challengeWindow);
  seconds('governanceDelay', p.governanceDelay);
  seconds('epochLength', p.epochLength, 1);
  seconds('answerWindow', p.answerWindow, 1);
  // FirnRewards refuses a window that leaves no second of an epoch to challenge in (decision 1590).
  if (p.answerWindow !== undefined && p.epochLength !== undefined && p.answerWindow >= p.epochLength)
    throw new InvalidInputError(
      `answerWindow (${p.answerWindow} s) must be shorter than epochLength (${p.epochLength} s): a challenge's answer window must end inside its epoch`,
    );
  if (p.protocolFeeBps !== undefined) assertUint(p.protocolFeeBps, 16, 'protocolFeeBps');
  if (p.livenessTarget !== undefined) assertUint(p.livenessTarget, 32, 'livenessTarget');
  for (const m of p.measurements ?? []) assertBytes32(m.measurement, 'measurement');
  for (const v of p.verifiers ?? []) assertAddress(v, 'verifier');
  if (p.profile === 'production') {
    if (p.governanceDelay < MIN_PRODUCTION_GOVERNANCE_DELAY)
      throw new InvalidInputError(
        `a production deployment needs a governance delay of at least ${MIN_PRODUCTION_GOVERNANCE_DELAY} s`,
      );
    if ((p.measurements ?? []).some((m) => m.teeType === TEE_TYPES.simulated))
      throw new InvalidInputError('a production deployment refuses the simulated TEE type');
  }
}

/**
 * Deploy the verifier set, registry, job market (after its linked library FirnJobMarketAdmin), reward
 * pool, data ledger and the timelock
 * (FirnGovernance = OpenZeppelin TimelockController); bootstrap them while the deployer owns them
 * (slashers, reward pool and reporters, parameters, guardian, initial allow-list and verifier
 * admissions, pool deposit), then transfer the ownership of every contract to the timelock: from
 * then on, every change is scheduled and takes effect only after `governanceDelay` seconds.
 * Follows the order of docs/decisions/0800-economics.md "API for clients". Throws
 * InvalidInputError on bad parameters (before any transaction), ChainRevertedError on a revert.
 */
export async function deployFirn(params: DeployFirnParams): Promise<FirnDeployment> {
  checkParams(params);
  const production = params.profile === 'production';
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
      // Fees within the clients' ceiling (decision 1470) and a gas limit within MAX_WRITE_GAS
      // (decision 1540), not as viem would fill them from the RPC: both are checked before the
      // creation is signed, as for every other write.
      const context = `deploy ${name}`;
      const [fees, estimate] = await Promise.all([
        feesWithinCeiling(clients, context),
        clients.public.estimateGas({
          account: owner,
          data: encodeDeployData({ abi, bytecode, args }),
          blockTag: 'latest',
          prepare: false,
        }),
      ]);
      const gas = gasWithinCap(estimate, context);
      // Signed with every field filled here (sendFilledWithinCaps): viem's deployContract would ask
      // the RPC to fill the request, and a filled answer can replace this gas and these fees.
      const nonce = await clients.public.getTransactionCount({ address: owner, blockTag: 'pending' });
      const hash = await sendFilledWithinCaps(clients, context, {
        chainId,
        nonce,
        gas,
        data: encodeDeployData({ abi, bytecode, args }),
        ...('gasPrice' in fees
          ? { type: 'legacy' as const, gasPrice: fees.gasPrice }
          : { type: 'eip1559' as const, ...fees }),
      });
      const receipt = await clients.public.waitForTransactionReceipt({ hash });
      if (receipt.status !== 'success' || !receipt.contractAddress)
        throw new Error(`deployment of ${name} failed in block ${receipt.blockNumber}`);
      return { address: getAddress(receipt.contractAddress), block: receipt.blockNumber };
    } catch (e) {
      throw toChainError(e, `deploy ${name}`);
    }
  };
  const call = (address: Address, abi: Abi, functionName: string, args: readonly unknown[], value?: bigint) =>
    writeContractAndWait(clients, {
      address,
      abi,
      functionName,
      args,
      ...(value === undefined ? {} : { value }),
    });

  const epochLength = BigInt(params.epochLength);
  const vs = await deploy('FirnVerifierSet', firnVerifierSetAbi, firnVerifierSetBytecode, [
    owner,
    params.minVerifierStake,
    BigInt(params.unbondingPeriod),
  ]);
  const reg = await deploy('FirnRegistry', firnRegistryAbi, firnRegistryBytecode, [
    owner,
    vs.address,
    params.minNodeStake,
    BigInt(params.unbondingPeriod),
    production ? PRODUCTION_TEE_TYPES : DEVNET_TEE_TYPES,
  ]);
  const claimBond = params.claimBond ?? 10n ** 16n;
  const falseDisputeSlash = params.falseDisputeSlash ?? params.slashAmount / 2n;
  // The market's cold governance paths live in a library it calls by DELEGATECALL (decision 1750):
  // deployed first, its address linked into the market's bytecode.
  const marketAdmin = await deploy(
    'FirnJobMarketAdmin',
    firnJobMarketAdminAbi,
    firnJobMarketAdminBytecode,
    [],
  );
  const marketBytecode = linkBytecode(firnJobMarketBytecode, firnJobMarketLinkReferences, {
    FirnJobMarketAdmin: marketAdmin.address,
  });
  const market = await deploy('FirnJobMarket', firnJobMarketAbi, marketBytecode, [
    owner,
    reg.address,
    vs.address,
    BigInt(params.challengeWindow),
    params.slashAmount,
    claimBond,
    falseDisputeSlash,
  ]);
  const rewards = await deploy('FirnRewards', firnRewardsAbi, firnRewardsBytecode, [
    owner,
    reg.address,
    vs.address,
    epochLength,
    BigInt(params.answerWindow ?? Math.max(1, Math.floor(params.epochLength / 4))),
    params.livenessTarget ?? 1,
    params.epochBudgetBps ?? 1000,
    params.verifierShareBps ?? 2000,
  ]);
  const ledger = await deploy('FirnDataLedger', firnDataLedgerAbi, firnDataLedgerBytecode, [reg.address]);
  const timelock = await deploy('FirnGovernance', firnGovernanceAbi, firnGovernanceBytecode, [
    BigInt(params.governanceDelay),
    params.proposers ?? [owner],
    params.executors ?? [owner],
    '0x0000000000000000000000000000000000000000',
  ]);

  // Bootstrap while the deployer still owns everything (docs/decisions/0800, "API for clients").
  await call(reg.address, firnRegistryAbi, 'setSlasher', [market.address]);
  await call(vs.address, firnVerifierSetAbi, 'setSlasher', [market.address]);
  await call(reg.address, firnRegistryAbi, 'setRewardPool', [rewards.address]);
  await call(rewards.address, firnRewardsAbi, 'setReporter', [reg.address, true]);
  await call(rewards.address, firnRewardsAbi, 'setReporter', [market.address, true]);
  if ((params.registrationFee ?? 0n) > 0n)
    await call(reg.address, firnRegistryAbi, 'setParameters', [
      params.minNodeStake,
      BigInt(params.unbondingPeriod),
      params.registrationFee,
    ]);
  if ((params.protocolFeeBps ?? 0) > 0)
    await call(market.address, firnJobMarketAbi, 'setParameters', [
      BigInt(params.challengeWindow),
      params.slashAmount,
      claimBond,
      params.protocolFeeBps,
      falseDisputeSlash,
    ]);
  if (params.guardian !== undefined) {
    await call(reg.address, firnRegistryAbi, 'setGuardian', [params.guardian]);
    await call(market.address, firnJobMarketAbi, 'setGuardian', [params.guardian]);
  }
  for (const m of params.measurements ?? [])
    await call(reg.address, firnRegistryAbi, 'allowMeasurement', [m.teeType, m.measurement]);
  for (const v of params.verifiers ?? [])
    await call(vs.address, firnVerifierSetAbi, 'setAdmission', [v, true]);
  if ((params.poolDeposit ?? 0n) > 0n)
    await call(rewards.address, firnRewardsAbi, 'fund', [], params.poolDeposit);

  // Hand over: from here on only the timelock can change anything.
  for (const [address, abi] of [
    [vs.address, firnVerifierSetAbi],
    [reg.address, firnRegistryAbi],
    [market.address, firnJobMarketAbi],
    [rewards.address, firnRewardsAbi],
  ] as const)
    await call(address, abi, 'transferOwnership', [timelock.address]);

  return {
    chainId,
    registry: reg.address,
    verifierSet: vs.address,
    jobMarket: market.address,
    dataLedger: ledger.address,
    rewards: rewards.address,
    timelock: timelock.address,
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
