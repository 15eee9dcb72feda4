import { InvalidInputError } from '@firn/core';
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  type HttpTransport,
  http,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { FirnDeployment } from './types.ts';

/** What every firn action takes: a reader, an optional signer, and the deployment. */
export interface FirnClients {
  public: PublicClient;
  wallet?: WalletClient;
  addresses: FirnDeployment;
  /** Blocks per `eth_getLogs` call of the reads that scan from the deployment block (getLogsPaged; default 5000). */
  logBlockRange?: bigint;
  /** How long a write waits for its receipt (writeContractAndWait; defaults there). */
  receiptWait?: ReceiptWaitOptions;
  /**
   * The most a write through these clients signs per gas (writeContractAndWait). Absent on clients
   * built by hand: then the defaults, with FIRN_MAX_FEE_PER_GAS_GWEI / FIRN_MAX_PRIORITY_FEE_PER_GAS_GWEI.
   */
  feeCeiling?: FeeCeiling;
  /**
   * Closes the clients for writes when aborted (a daemon's stop): a write queued behind another
   * of the account is refused before it sends, and a write waiting for its receipt stops waiting,
   * both with FirnError E_UNAVAILABLE. Without it a write waits out a chain outage for as long as
   * it lasts, and with it every later write of the account in this process (writeContractAndWait).
   */
  signal?: AbortSignal;
}

/**
 * The fees a write may sign, in wei per gas (decision 1470). The RPC names every fee a write pays
 * (the base fee of the latest or pending block, eth_maxPriorityFeePerGas, eth_gasPrice) and the RPC
 * is not trusted: a lying one would make the account pay whatever it says. No fee above these is
 * ever signed; a write whose chain asks for more fails with FeeCeilingError (E_CHAIN).
 */
export interface FeeCeiling {
  /** Ceiling on maxFeePerGas, and on gasPrice of a legacy transaction (wei per gas). */
  maxFeePerGas: bigint;
  /** Ceiling on maxPriorityFeePerGas, the tip paid in full whatever the base fee (wei per gas); at most maxFeePerGas. */
  maxPriorityFeePerGas: bigint;
}

const GWEI = 10n ** 9n;
/**
 * Default ceiling on the fee per gas: 500 gwei. Ethereum's base fee stays far below it outside
 * rare spikes, L2s (Arbitrum, Optimism, Base) run at hundredths of a gwei and anvil starts at 1 gwei;
 * a 300,000-gas write costs at most 0.15 ETH under it (decision 1470).
 */
export const DEFAULT_MAX_FEE_PER_GAS = 500n * GWEI;
/** The default tip ceiling is this fraction (1/10) of the fee ceiling (at least 1 wei): 50 gwei by default. */
export const DEFAULT_TIP_DIVISOR = 10n;
/** Environment variables an operator sets to move the ceiling of every client the process makes (gwei, decimals allowed). */
export const FEE_CEILING_ENV = {
  maxFeePerGas: 'FIRN_MAX_FEE_PER_GAS_GWEI',
  maxPriorityFeePerGas: 'FIRN_MAX_PRIORITY_FEE_PER_GAS_GWEI',
} as const;

/** A gwei amount ("500", "0.05") as wei; E_INVALID_INPUT naming `what` when it is not a positive number. */
function gweiToWei(v: string, what: string): bigint {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,9}))?\s*$/.exec(v);
  const wei = m === null ? 0n : BigInt(m[1]!) * GWEI + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
  if (wei <= 0n)
    throw new InvalidInputError(
      `${what} must be a positive amount of gwei such as 500 or 0.5 (got ${JSON.stringify(v)})`,
    );
  return wei;
}

/**
 * The ceiling of a write: `given` fields first, then the environment (FEE_CEILING_ENV, gwei), then
 * the defaults (DEFAULT_MAX_FEE_PER_GAS; the tip at 1/10 of the fee ceiling, never above it).
 *
 * @throws InvalidInputError (E_INVALID_INPUT) naming the setting when a value is not a positive
 *   amount, or when the tip ceiling is above the fee ceiling.
 */
export function resolveFeeCeiling(
  given: Partial<FeeCeiling> = {},
  env: Record<string, string | undefined> = process.env,
): FeeCeiling {
  const fromEnv = (k: keyof FeeCeiling): bigint | undefined => {
    const v = env[FEE_CEILING_ENV[k]];
    return v === undefined || v === '' ? undefined : gweiToWei(v, FEE_CEILING_ENV[k]);
  };
  const maxFeePerGas = given.maxFeePerGas ?? fromEnv('maxFeePerGas') ?? DEFAULT_MAX_FEE_PER_GAS;
  const maxPriorityFeePerGas =
    given.maxPriorityFeePerGas ??
    fromEnv('maxPriorityFeePerGas') ??
    (maxFeePerGas >= DEFAULT_TIP_DIVISOR ? maxFeePerGas / DEFAULT_TIP_DIVISOR : 1n);
  if (maxFeePerGas <= 0n || maxPriorityFeePerGas <= 0n)
    throw new InvalidInputError('the fee ceiling (feeCeiling) must be positive, in wei per gas');
  if (maxPriorityFeePerGas > maxFeePerGas)
    throw new InvalidInputError(
      `the tip ceiling (${FEE_CEILING_ENV.maxPriorityFeePerGas}, feeCeiling.maxPriorityFeePerGas) is above the fee ceiling (${FEE_CEILING_ENV.maxFeePerGas}, feeCeiling.maxFeePerGas): lower it or raise the fee ceiling`,
    );
  return { maxFeePerGas, maxPriorityFeePerGas };
}

/** Bounds of a write's receipt wait (writeContractAndWait). */
export interface ReceiptWaitOptions {
  /** Length of one round, ms (default: 20 polling intervals, within 1,000-12,000). */
  roundMs?: number;
  /** Rounds before the write fails as not mined (default 5). */
  rounds?: number;
  /** Times a transaction dropped from the pool is sent again at its nonce (default 2). */
  resends?: number;
}

export interface CreateFirnClientsOptions {
  /** How often to poll for receipts and events, ms (default 1000; 50 suits a local anvil). */
  pollingIntervalMs?: number;
  /** Blocks per `eth_getLogs` call, for RPC endpoints that cap the range (default 5000). */
  logBlockRange?: bigint;
  /** Bounds of a write's receipt wait (see ReceiptWaitOptions). */
  receiptWait?: ReceiptWaitOptions;
  /**
   * The most a write signs per gas, wei (FeeCeiling). Fields left out come from
   * FIRN_MAX_FEE_PER_GAS_GWEI / FIRN_MAX_PRIORITY_FEE_PER_GAS_GWEI, else 500 gwei and 1/10 of it.
   */
  feeCeiling?: Partial<FeeCeiling>;
  /** Closes the clients for writes when aborted (FirnClients.signal). */
  signal?: AbortSignal;
}

/** How long one RPC request may go unanswered before it fails (viem's TimeoutError), ms. */
export const RPC_TIMEOUT_MS = 10_000;

/** How many times an RPC request that timed out, was rate limited or hit a 5xx is tried again. */
export const RPC_RETRY_COUNT = 2;

/**
 * The HTTP transport every firn client uses (decision 1749): one request waits at most
 * RPC_TIMEOUT_MS (10 s) and is tried RPC_RETRY_COUNT (2) more times with viem's backoff (150 ms,
 * 300 ms), so an RPC that accepts the connection and never answers (a stopped devnet, a hung
 * provider) fails one call in about 31 s with viem's TimeoutError, never hangs.
 */
export function firnTransport(rpcUrl: string): HttpTransport {
  return http(rpcUrl, { timeout: RPC_TIMEOUT_MS, retryCount: RPC_RETRY_COUNT });
}

/** A viem chain for a firn network known only by its RPC URL and chain id. */
export function firnChain(rpcUrl: string, chainId: number): Chain {
  return defineChain({
    id: chainId,
    name: `firn-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

/**
 * Public client, and a wallet client when a private key is given, for one deployment. The wallet's
 * fee ceiling is resolved here (resolveFeeCeiling); E_INVALID_INPUT when it is malformed.
 */
export function createFirnClients(
  rpcUrl: string,
  privateKey: Hex | undefined,
  deployment: FirnDeployment,
  opts: CreateFirnClientsOptions = {},
): FirnClients {
  const chain = firnChain(rpcUrl, deployment.chainId);
  const pollingInterval = opts.pollingIntervalMs ?? 1000;
  const publicClient = createPublicClient({
    chain,
    transport: firnTransport(rpcUrl),
    pollingInterval,
  }) as PublicClient;
  const range = {
    ...(opts.logBlockRange === undefined ? {} : { logBlockRange: opts.logBlockRange }),
    ...(opts.receiptWait === undefined ? {} : { receiptWait: opts.receiptWait }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
  };
  if (privateKey === undefined) return { public: publicClient, addresses: deployment, ...range };
  const feeCeiling = resolveFeeCeiling(opts.feeCeiling);
  const wallet = createWalletClient({
    chain,
    transport: firnTransport(rpcUrl),
    account: privateKeyToAccount(privateKey),
    pollingInterval,
  });
  return { public: publicClient, wallet, addresses: deployment, ...range, feeCeiling };
}

/** The wallet of `clients` with its account, or a typed error when the clients cannot sign. */
export function requireWallet(clients: FirnClients): WalletClient<Transport, Chain | undefined, Account> {
  const w = clients.wallet;
  if (w === undefined || w.account === undefined)
    throw new InvalidInputError('this action sends a transaction: create the clients with a private key');
  return w as WalletClient<Transport, Chain | undefined, Account>;
}
