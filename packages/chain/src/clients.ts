import { InvalidInputError } from '@firn/core';
import {
  type Account,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
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

/** Public client, and a wallet client when a private key is given, for one deployment. */
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
    transport: http(rpcUrl),
    pollingInterval,
  }) as PublicClient;
  const range = {
    ...(opts.logBlockRange === undefined ? {} : { logBlockRange: opts.logBlockRange }),
    ...(opts.receiptWait === undefined ? {} : { receiptWait: opts.receiptWait }),
  };
  if (privateKey === undefined) return { public: publicClient, addresses: deployment, ...range };
  const wallet = createWalletClient({
    chain,
    transport: http(rpcUrl),
    account: privateKeyToAccount(privateKey),
    pollingInterval,
  });
  return { public: publicClient, wallet, addresses: deployment, ...range };
}

/** The wallet of `clients` with its account, or a typed error when the clients cannot sign. */
export function requireWallet(clients: FirnClients): WalletClient<Transport, Chain | undefined, Account> {
  const w = clients.wallet;
  if (w === undefined || w.account === undefined)
    throw new InvalidInputError('this action sends a transaction: create the clients with a private key');
  return w as WalletClient<Transport, Chain | undefined, Account>;
}
