import { FirnError } from '@firn/core';
import { type Abi, BaseError, ContractFunctionRevertedError, decodeErrorResult, type Hex } from 'viem';
import {
  firnDataLedgerAbi,
  firnGovernanceAbi,
  firnJobMarketAbi,
  firnRegistryAbi,
  firnRewardsAbi,
  firnVerifierSetAbi,
} from './abi/generated.ts';
import { NODE_INELIGIBLE_REASONS } from './types.ts';

/** Every custom error any firn contract can revert with (calls cross contracts). */
export const firnErrorsAbi: Abi = dedupeErrors([
  ...firnRegistryAbi,
  ...firnVerifierSetAbi,
  ...firnJobMarketAbi,
  ...firnDataLedgerAbi,
  ...firnRewardsAbi,
  ...firnGovernanceAbi,
]);

function dedupeErrors(items: readonly Abi[number][]): Abi {
  const seen = new Set<string>();
  const out: Abi[number][] = [];
  for (const item of items) {
    if (item.type !== 'error') continue;
    const key = `${item.name}(${item.inputs.map((i) => i.type).join(',')})`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(item);
  }
  return out;
}

/**
 * A transaction or call that a firn contract refused. `errorName` and `args` are the decoded
 * custom error (e.g. StakeTooLow [sent, min]); both are undefined when the revert carried no
 * data the ABI knows.
 */
export class ChainRevertedError extends FirnError {
  override readonly name = 'ChainRevertedError';
  readonly errorName: string | undefined;
  readonly args: readonly unknown[] | undefined;

  constructor(
    errorName: string | undefined,
    args: readonly unknown[] | undefined,
    context: string,
    cause?: unknown,
  ) {
    const shown =
      errorName === undefined
        ? 'unknown revert'
        : `${errorName}(${(args ?? []).map(fmt).join(', ')})${reasonText(errorName, args)}`;
    super('E_CHAIN_REVERTED', `${context} reverted: ${shown}`, {
      cause,
      details: {
        errorName: errorName ?? null,
        args: args === undefined ? null : JSON.stringify(args, replacer),
      },
    });
    this.errorName = errorName;
    this.args = args;
  }
}

/**
 * The job market's NodeNotEligible(jobId, enclaveId, reason) reason in words (": <text>"), so a
 * refused claim says what to change; '' for any other error (the registry's and the ledger's
 * NodeNotEligible take two arguments and other reason codes).
 */
function reasonText(errorName: string, args: readonly unknown[] | undefined): string {
  if (errorName !== 'NodeNotEligible' || args?.length !== 3) return '';
  const text = (NODE_INELIGIBLE_REASONS as Record<number, string>)[Number(args[2])];
  return text === undefined ? '' : `: ${text}`;
}

function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

function fmt(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return v.startsWith('0x') ? v : JSON.stringify(v);
  return JSON.stringify(v, replacer) ?? String(v);
}

/** Decode raw revert data against every firn error; undefined when unknown. */
export function decodeFirnRevert(data: Hex): { errorName: string; args: readonly unknown[] } | undefined {
  try {
    const r = decodeErrorResult({ abi: firnErrorsAbi, data });
    return { errorName: r.errorName, args: r.args ?? [] };
  } catch {
    return undefined;
  }
}

/**
 * Turn what viem threw into a ChainRevertedError when it is a contract revert; other failures
 * (network, RPC) become FirnError('E_CHAIN'). Never includes keys or raw transactions.
 */
export function toChainError(e: unknown, context: string): FirnError {
  if (e instanceof FirnError) return e;
  if (e instanceof BaseError) {
    const reverted = e.walk((x) => x instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      if (reverted.data?.errorName !== undefined)
        return new ChainRevertedError(reverted.data.errorName, reverted.data.args ?? [], context, e);
      const raw = reverted.raw;
      const decoded = raw === undefined ? undefined : decodeFirnRevert(raw);
      return new ChainRevertedError(decoded?.errorName, decoded?.args, context, e);
    }
    // Some RPCs report reverts as a raw data field on the RPC error.
    const withData = e.walk((x) => typeof (x as { data?: unknown }).data === 'string') as {
      data?: unknown;
    } | null;
    if (withData && typeof withData.data === 'string' && withData.data.startsWith('0x')) {
      const decoded = decodeFirnRevert(withData.data as Hex);
      if (decoded) return new ChainRevertedError(decoded.errorName, decoded.args, context, e);
    }
    return new FirnError('E_CHAIN', `${context} failed: ${e.shortMessage}`, { cause: e });
  }
  return new FirnError('E_CHAIN', `${context} failed: ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
  });
}
