import { InvalidInputError } from '@firn/core';
import {
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  ContractFunctionZeroDataError,
  encodeFunctionData,
  type Hex,
} from 'viem';
import { firnJobMarketAbi, firnRegistryAbi, firnRewardsAbi, firnVerifierSetAbi } from '../abi/generated.ts';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import type { FirnDeployment } from '../types.ts';
import { assertAddress, assertBytes32, assertUint } from '../validate.ts';
import type { TimelockCall } from './timelock.ts';

/**
 * Calldata for the governance actions of docs/decisions/0800-economics.md, to be scheduled on the
 * timelock (governAndExecute). Each builder only encodes; the contracts check the values when the
 * operation executes (e.g. InvalidProtocolFee, InvalidParameters) and the revert comes back
 * decoded from `execute`.
 */

/** The contracts governance can pause (postJob/claimJob; register/rotateKeys). */
export type PausableContract = 'registry' | 'jobMarket';

/** Owner: add a measurement to the allow-list of one TEE type (1 simulated, 2 SGX, 3 TDX). */
export function allowMeasurementCall(
  d: FirnDeployment,
  p: { teeType: number; measurement: Hex },
): TimelockCall {
  return {
    target: d.registry,
    data: encodeFunctionData({
      abi: firnRegistryAbi,
      functionName: 'allowMeasurement',
      args: [Number(assertUint(p.teeType, 8, 'teeType')), assertBytes32(p.measurement, 'measurement')],
    }),
  };
}

/** Owner (or guardian at once): revoke a measurement; its nodes become ineligible when it executes. */
export function revokeMeasurementCall(
  d: FirnDeployment,
  p: { teeType: number; measurement: Hex },
): TimelockCall {
  return {
    target: d.registry,
    data: encodeFunctionData({
      abi: firnRegistryAbi,
      functionName: 'revokeMeasurement',
      args: [Number(assertUint(p.teeType, 8, 'teeType')), assertBytes32(p.measurement, 'measurement')],
    }),
  };
}

/** Owner: the TEE types the registry accepts, bit (1 << teeType); production clears bit 1 (simulated). */
export function setAllowedTeeTypesCall(d: FirnDeployment, mask: number): TimelockCall {
  return {
    target: d.registry,
    data: encodeFunctionData({
      abi: firnRegistryAbi,
      functionName: 'setAllowedTeeTypes',
      args: [Number(assertUint(mask, 8, 'mask'))],
    }),
  };
}

/**
 * Owner: the network's reward pool. The job market reads the registry's pointer, so this one call
 * moves registration fees, protocol fees and work reports together (decision 1756). The registry
 * refuses an address without code (RewardPoolNotContract) and a pool whose `registry()` or
 * `verifierSet()` is not its own (RewardPoolMismatch); check with `rewardPoolBindingOf` first.
 */
export function setRewardPoolCall(d: FirnDeployment, pool: Address): TimelockCall {
  return {
    target: d.registry,
    data: encodeFunctionData({
      abi: firnRegistryAbi,
      functionName: 'setRewardPool',
      args: [assertAddress(pool, 'pool')],
    }),
  };
}

/**
 * Owner of the retired pool `pool`: move its unallocated balance (owed to no epoch) to the
 * registry's current pool (FirnRewards.moveUnallocated, decision 1757). Refused at execution with
 * PoolNotRetired, WorkedEpochsOpen(count) or NothingToMove; check with `unallocatedOf` first.
 */
export function moveUnallocatedCall(pool: Address): TimelockCall {
  return {
    target: assertAddress(pool, 'pool'),
    data: encodeFunctionData({ abi: firnRewardsAbi, functionName: 'moveUnallocated', args: [] }),
  };
}

/** What `moveUnallocated` on `pool` would find now: wei owed to no epoch, and epochs with points not closed. */
export async function unallocatedOf(
  clients: FirnClients,
  pool: Address,
): Promise<{ registryPool: Address; unallocated: bigint; openWorkedEpochs: bigint }> {
  const read = (functionName: 'totalReceived' | 'totalAllocated' | 'totalMoved' | 'openWorkedEpochs') =>
    clients.public.readContract({ address: pool, abi: firnRewardsAbi, functionName }) as Promise<bigint>;
  try {
    const [registryPool, received, allocated, moved, openWorkedEpochs] = await Promise.all([
      clients.public.readContract({
        address: clients.addresses.registry,
        abi: firnRegistryAbi,
        functionName: 'rewardPool',
      }) as Promise<Address>,
      read('totalReceived'),
      read('totalAllocated'),
      read('totalMoved'),
      read('openWorkedEpochs'),
    ]);
    return { registryPool, unallocated: received - allocated - moved, openWorkedEpochs };
  } catch (e) {
    throw toChainError(e, 'unallocatedOf');
  }
}

/**
 * What `registry.setRewardPool(pool)` checks (decision 1756): the registry's address and verifier
 * set, and the ones `pool` names (its `registry()` and `verifierSet()` back-pointers; undefined
 * when the contract does not answer them, i.e. it is no FirnRewards). Read-only; throws
 * ChainRevertedError/FirnError('E_CHAIN') when the registry cannot be read.
 */
export async function rewardPoolBindingOf(
  clients: FirnClients,
  pool: Address,
): Promise<{
  registry: Address;
  verifierSet: Address;
  poolRegistry: Address | undefined;
  poolVerifierSet: Address | undefined;
}> {
  const registry = clients.addresses.registry;
  let verifierSet: Address;
  try {
    verifierSet = (await clients.public.readContract({
      address: registry,
      abi: firnRegistryAbi,
      functionName: 'verifierSet',
    })) as Address;
  } catch (e) {
    throw toChainError(e, 'rewardPoolBindingOf');
  }
  const backPointer = async (functionName: 'registry' | 'verifierSet'): Promise<Address | undefined> => {
    try {
      return (await clients.public.readContract({
        address: pool,
        abi: firnRewardsAbi,
        functionName,
      })) as Address;
    } catch (e) {
      // A contract without the view reverts or returns nothing: it names no registry.
      const noAnswer =
        e instanceof BaseError &&
        e.walk(
          (x) => x instanceof ContractFunctionRevertedError || x instanceof ContractFunctionZeroDataError,
        ) !== null;
      if (noAnswer) return undefined;
      throw toChainError(e, 'rewardPoolBindingOf');
    }
  };
  const poolRegistry = await backPointer('registry');
  const poolVerifierSet = await backPointer('verifierSet');
  return { registry, verifierSet, poolRegistry, poolVerifierSet };
}

/** Owner: admit (or un-admit) an account to join the verifier set. */
export function setAdmissionCall(
  d: FirnDeployment,
  p: { account: Address; admitted: boolean },
): TimelockCall {
  return {
    target: d.verifierSet,
    data: encodeFunctionData({
      abi: firnVerifierSetAbi,
      functionName: 'setAdmission',
      args: [assertAddress(p.account, 'account'), p.admitted],
    }),
  };
}

/** Owner: pause or unpause one contract (pause never blocks withdrawals, proofs or finalization). */
export function pauseCall(d: FirnDeployment, contract: PausableContract, paused: boolean): TimelockCall {
  const fn = paused ? 'pause' : 'unpause';
  return contract === 'registry'
    ? { target: d.registry, data: encodeFunctionData({ abi: firnRegistryAbi, functionName: fn, args: [] }) }
    : {
        target: d.jobMarket,
        data: encodeFunctionData({ abi: firnJobMarketAbi, functionName: fn, args: [] }),
      };
}

/**
 * Every parameter `set-param` can change, as `contract.name`: the contract's setParameters takes
 * all of its parameters at once, so the others are read from chain and passed unchanged.
 */
export const GOVERNANCE_PARAMETERS = {
  registry: ['minNodeStake', 'unbondingPeriod', 'registrationFee'],
  verifierSet: ['minVerifierStake', 'unbondingPeriod'],
  jobMarket: ['challengeWindow', 'slashAmount', 'claimBond', 'protocolFeeBps', 'falseDisputeSlash'],
  rewards: ['answerWindow', 'livenessTarget', 'epochBudgetBps', 'verifierShareBps'],
} as const;
export type GovernedContract = keyof typeof GOVERNANCE_PARAMETERS;

/** Split "jobMarket.protocolFeeBps" (also "market.x") into a contract and a parameter, or throw. */
export function parseParameterName(name: string): { contract: GovernedContract; param: string } {
  const [c0, param, ...rest] = name.split('.');
  const contract = c0 === 'market' ? 'jobMarket' : c0;
  const all = Object.entries(GOVERNANCE_PARAMETERS)
    .flatMap(([c, ps]) => ps.map((p) => `${c}.${p}`))
    .join(', ');
  if (
    rest.length > 0 ||
    param === undefined ||
    contract === undefined ||
    !(contract in GOVERNANCE_PARAMETERS)
  )
    throw new InvalidInputError(`unknown parameter ${name}; one of: ${all}`);
  const c = contract as GovernedContract;
  if (!(GOVERNANCE_PARAMETERS[c] as readonly string[]).includes(param))
    throw new InvalidInputError(`unknown parameter ${name}; one of: ${all}`);
  return { contract: c, param };
}

/**
 * The current values of one contract's governed parameters, in setParameters order. For rewards:
 * the set the last setParameters wrote, which applies from its first epoch on (decision 1706).
 */
export async function readParameters(
  clients: FirnClients,
  contract: GovernedContract,
): Promise<Record<string, bigint>> {
  const d = clients.addresses;
  const target =
    contract === 'registry'
      ? { address: d.registry, abi: firnRegistryAbi }
      : contract === 'verifierSet'
        ? { address: d.verifierSet, abi: firnVerifierSetAbi }
        : contract === 'jobMarket'
          ? { address: d.jobMarket, abi: firnJobMarketAbi }
          : { address: requireRewards(d), abi: firnRewardsAbi };
  const out: Record<string, bigint> = {};
  try {
    if (contract === 'rewards') {
      // A rewards set applies from the next epoch (decision 1706): the set the last setParameters
      // wrote, so a change of one parameter keeps one still waiting for its epoch.
      const rewards = { address: requireRewards(d), abi: firnRewardsAbi } as const;
      const epoch = await clients.public.readContract({ ...rewards, functionName: 'currentEpoch' });
      const latest = await clients.public.readContract({
        ...rewards,
        functionName: 'parametersAt',
        args: [epoch + 1n],
      });
      for (const name of GOVERNANCE_PARAMETERS.rewards) out[name] = BigInt(latest[name]);
      return out;
    }
    for (const name of GOVERNANCE_PARAMETERS[contract]) {
      const v = await clients.public.readContract({
        address: target.address,
        abi: target.abi as typeof firnRegistryAbi,
        functionName: name as 'minNodeStake',
      });
      out[name] = BigInt(v as bigint | number);
    }
  } catch (e) {
    throw toChainError(e, `read ${contract} parameters`);
  }
  return out;
}

function requireRewards(d: FirnDeployment): Address {
  if (d.rewards === undefined) throw new InvalidInputError('this deployment has no rewards contract');
  return d.rewards;
}

/**
 * Owner: set one parameter, keeping the contract's others as they are now. Units: wei for stakes,
 * fees and bonds; seconds for periods and windows; basis points for *Bps; a count for
 * livenessTarget. Returns the call and the full parameter set it will write.
 */
export async function setParameterCall(
  clients: FirnClients,
  p: { name: string; value: bigint },
): Promise<{ call: TimelockCall; before: Record<string, bigint>; after: Record<string, bigint> }> {
  const { contract, param } = parseParameterName(p.name);
  if (p.value < 0n) throw new InvalidInputError('parameter values are unsigned');
  const before = await readParameters(clients, contract);
  const after = { ...before, [param]: p.value };
  const d = clients.addresses;
  const u = (name: string, bits: number) => assertUint(after[name]!, bits, name);
  let call: TimelockCall;
  if (contract === 'registry')
    call = {
      target: d.registry,
      data: encodeFunctionData({
        abi: firnRegistryAbi,
        functionName: 'setParameters',
        args: [u('minNodeStake', 256), u('unbondingPeriod', 64), u('registrationFee', 256)],
      }),
    };
  else if (contract === 'verifierSet')
    call = {
      target: d.verifierSet,
      data: encodeFunctionData({
        abi: firnVerifierSetAbi,
        functionName: 'setParameters',
        args: [u('minVerifierStake', 256), u('unbondingPeriod', 64)],
      }),
    };
  else if (contract === 'jobMarket')
    call = {
      target: d.jobMarket,
      data: encodeFunctionData({
        abi: firnJobMarketAbi,
        functionName: 'setParameters',
        args: [
          u('challengeWindow', 64),
          u('slashAmount', 256),
          u('claimBond', 256),
          Number(u('protocolFeeBps', 16)),
          u('falseDisputeSlash', 256),
        ],
      }),
    };
  else {
    // The pool refuses a window that leaves no second of an epoch to challenge in (decision 1590):
    // say so before a proposal waits out the delay only to revert.
    const epochLength = await clients.public.readContract({
      address: requireRewards(d),
      abi: firnRewardsAbi,
      functionName: 'epochLength',
    });
    if (after.answerWindow! >= BigInt(epochLength))
      throw new InvalidInputError(
        `rewards.answerWindow (${after.answerWindow} s) must be shorter than the epoch (${epochLength} s): a challenge's answer window must end inside its epoch`,
      );
    call = {
      target: requireRewards(d),
      data: encodeFunctionData({
        abi: firnRewardsAbi,
        functionName: 'setParameters',
        args: [
          u('answerWindow', 64),
          Number(u('livenessTarget', 32)),
          Number(u('epochBudgetBps', 16)),
          Number(u('verifierShareBps', 16)),
        ],
      }),
    };
  }
  return { call, before, after };
}
