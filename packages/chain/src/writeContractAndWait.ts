import { FirnError } from '@firn/core';
import {
  type Abi,
  type Address,
  BaseError,
  encodeFunctionData,
  FeeCapTooLowError,
  type Hex,
  NonceTooLowError,
  type TransactionReceipt,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type TransactionSerializable,
} from 'viem';
import { getTransactionError } from 'viem/utils';
import { ChainRevertedError, toChainError } from './ChainRevertedError.ts';
import { type FirnClients, type ReceiptWaitOptions, requireWallet } from './clients.ts';

export interface WriteRequest {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  value?: bigint;
}

export interface WriteResult<T = undefined> {
  hash: Hex;
  receipt: TransactionReceipt;
  /** The function's return value as simulated just before sending. */
  result: T;
}

/** Tail of the write queue of each sending account in this process (per chain). */
const queues = new Map<string, Promise<unknown>>();

/**
 * Simulate, send and wait for the receipt of one contract call. A revert (in simulation or in the
 * mined transaction) becomes a ChainRevertedError naming the custom error and its arguments.
 * Writes from one account are serialized within the process: two concurrent sends would otherwise
 * pick the same nonce, and the dropped one would never get a receipt (e.g. a verifier's vote and
 * its liveness challenge).
 *
 * The receipt wait is bounded (`clients.receiptWait`, see waitForOwnReceipt): a write settles
 * within rounds x roundMs (default 5 rounds of 20 polling intervals, each within 1-12 s) plus its
 * resends, and the account's queue is released whether it succeeds or fails.
 *
 * @returns the hash this process sent, its receipt (always of that hash) and the simulated result.
 * @throws ChainRevertedError (E_CHAIN_REVERTED) when the call reverts, in simulation or mined;
 *   FirnError E_CHAIN_REPLACED when another transaction of the account took the nonce (details:
 *   nonce, hash); FirnError E_CHAIN when it was not mined within the rounds (details: nonce,
 *   hash, waitedMs) or the RPC failed.
 */
export async function writeContractAndWait<T = undefined>(
  clients: FirnClients,
  req: WriteRequest,
): Promise<WriteResult<T>> {
  const wallet = requireWallet(clients);
  const key = `${clients.addresses.chainId}:${wallet.account.address.toLowerCase()}`;
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(
    () => send<T>(clients, req),
    () => send<T>(clients, req),
  );
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

async function send<T>(clients: FirnClients, req: WriteRequest): Promise<WriteResult<T>> {
  const wallet = requireWallet(clients);
  const context = `${req.functionName}`;
  try {
    const sim = await clients.public.simulateContract({
      account: wallet.account,
      address: req.address,
      abi: req.abi,
      functionName: req.functionName,
      args: req.args,
      ...(req.value === undefined ? {} : { value: req.value }),
    });
    // Head-room over the estimate: another transaction landing first can make this call take a
    // costlier path (e.g. the vote that reaches the quorum), which would otherwise run out of gas.
    // Estimated at 'latest', like the simulation, and sent with every field filled here (nonce,
    // fees, gas, chain id), so no request runs on the 'pending' block: anvil builds that block on a
    // copy of the whole state (eth_estimateGas without a block, eth_fillTransaction, which viem
    // uses to fill a request), a cost that grew with every job the chain held (decision 1400).
    const estimate = await clients.public.estimateContractGas({
      account: wallet.account,
      address: req.address,
      abi: req.abi,
      functionName: req.functionName,
      args: req.args,
      blockTag: 'latest',
      prepare: false,
      ...(req.value === undefined ? {} : { value: req.value }),
    });
    let [nonce, fees] = await Promise.all([
      clients.public.getTransactionCount({ address: wallet.account.address, blockTag: 'pending' }),
      // A chain without EIP-1559 base fees (estimateFeesPerGas refuses it) gets a legacy gas price.
      clients.public.estimateFeesPerGas().then(
        (f): { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint } => ({
          maxFeePerGas: f.maxFeePerGas,
          maxPriorityFeePerGas: f.maxPriorityFeePerGas,
        }),
        async () => ({ gasPrice: await clients.public.getGasPrice() }),
      ),
    ]);
    // Every field is filled here (chain id, nonce, fees, gas), signed with the local key and sent
    // raw: nothing asks the RPC to fill the request (eth_fillTransaction, eth_chainId), and the
    // same call goes again at the same nonce with other fees (a resend, a re-price).
    const data = encodeFunctionData({ abi: req.abi, functionName: req.functionName, args: req.args });
    const gas = (estimate * 3n) / 2n + 50_000n;
    const sendWith = (f: Fees): Promise<Hex> =>
      sendSigned(clients, {
        chainId: clients.addresses.chainId,
        to: req.address,
        data,
        gas,
        nonce,
        ...(req.value === undefined ? {} : { value: req.value }),
        ...('gasPrice' in f
          ? { type: 'legacy', gasPrice: f.gasPrice }
          : { type: 'eip1559', maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas }),
      });
    // Two refusals are met once each by sending again: another process or CLI holding this key took
    // the nonce in the meantime (read it again; a mined revert after that is decoded below, as
    // always), or the next block's base fee rose past the cap filled from 'latest' (a spike: the
    // refusal stays until a block is mined, so cap at twice the next block's base fee). Only on
    // these errors: a normal write still makes no request on the pending block.
    let hash: Hex | undefined;
    for (let attempt = 0; hash === undefined; attempt++) {
      try {
        hash = await sendWith(fees);
      } catch (e) {
        if (attempt >= 2 || !(e instanceof BaseError)) throw e;
        if (e.walk((x) => x instanceof NonceTooLowError) || heldInPool(e)) {
          nonce = await clients.public.getTransactionCount({
            address: wallet.account.address,
            blockTag: 'pending',
          });
        } else if (e.walk((x) => x instanceof FeeCapTooLowError) && 'maxFeePerGas' in fees) {
          const next = await clients.public.getBlock({ blockTag: 'pending' });
          if (next.baseFeePerGas === null) throw e;
          fees = {
            maxFeePerGas: next.baseFeePerGas * 2n + fees.maxPriorityFeePerGas,
            maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
          };
        } else throw e;
      }
    }
    const receipt = await waitForOwnReceipt(clients, hash, nonce, fees, sendWith, context);
    if (receipt.status !== 'success') {
      // Mined but reverted (state changed between simulation and inclusion): replay to decode, on
      // the state before its block, then (a transaction earlier in the same block changed it) on
      // the state after it.
      for (const blockNumber of [receipt.blockNumber - 1n, receipt.blockNumber]) {
        try {
          await clients.public.simulateContract({
            account: wallet.account,
            address: req.address,
            abi: req.abi,
            functionName: req.functionName,
            args: req.args,
            blockNumber,
            ...(req.value === undefined ? {} : { value: req.value }),
          });
        } catch (e) {
          throw toChainError(e, context);
        }
      }
      throw new ChainRevertedError(undefined, undefined, context);
    }
    return { hash: receipt.transactionHash, receipt, result: sim.result as T };
  } catch (e) {
    throw toChainError(e, context);
  }
}

type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint };

/**
 * The pool refused the write as an underpriced replacement: another transaction of this key (a
 * second process, a CLI) waits in the pool at the nonce read, not mined yet. Like a nonce taken
 * and mined (NonceTooLowError), the nonce is read again ('pending' counts the pooled one).
 */
function heldInPool(e: BaseError): boolean {
  return (
    e.walk((x) => x instanceof BaseError && /replacement transaction underpriced/i.test(x.details ?? '')) !==
    null
  );
}

/**
 * Sign `tx` with the wallet's local key and send it raw (eth_sendRawTransaction). Node errors are
 * mapped as viem's sendTransaction maps them (NonceTooLowError, FeeCapTooLowError, ...), so the
 * callers' `walk` checks see the same classes.
 */
async function sendSigned(clients: FirnClients, tx: TransactionSerializable): Promise<Hex> {
  const wallet = requireWallet(clients);
  const account = wallet.account;
  if (account.type !== 'local' || account.signTransaction === undefined)
    throw new FirnError(
      'E_INVALID_INPUT',
      'chain writes need a local key (create the clients with a private key)',
    );
  try {
    const serializedTransaction = await account.signTransaction(tx);
    return await wallet.sendRawTransaction({ serializedTransaction });
  } catch (e) {
    if (!(e instanceof BaseError)) throw e;
    throw getTransactionError(e, {
      account,
      chain: wallet.chain,
      to: tx.to,
      data: tx.data,
      gas: tx.gas,
      nonce: tx.nonce,
      value: tx.value,
    });
  }
}

/**
 * The fees a write waiting in the pool must be re-sent with, or undefined when it is not priced
 * out. It is priced out when the next block's base fee (the 'pending' block, asked only here, on a
 * round that ended without a receipt) is above its fee cap (its gas price for a legacy one). The
 * new fees replace it at the same nonce: every fee at least 10 % over the old one plus 1 wei (the
 * replacement rule of geth's and anvil's pools), and a cap of twice the next base fee plus the tip.
 * A chain without base fees is never re-priced here (nothing tells a stuck legacy price).
 */
async function repricedFees(clients: FirnClients, current: Fees): Promise<Fees | undefined> {
  const next = (await clients.public.getBlock({ blockTag: 'pending' })).baseFeePerGas;
  if (next === null || next === undefined) return undefined;
  const bump = (x: bigint) => (x * 11n) / 10n + 1n;
  if ('gasPrice' in current) {
    if (current.gasPrice >= next) return undefined;
    return { gasPrice: maxBig(bump(current.gasPrice), next * 2n) };
  }
  if (current.maxFeePerGas >= next) return undefined;
  const maxPriorityFeePerGas = bump(current.maxPriorityFeePerGas);
  return {
    maxFeePerGas: maxBig(bump(current.maxFeePerGas), next * 2n + maxPriorityFeePerGas),
    maxPriorityFeePerGas,
  };
}

const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/** The round bounds of `clients` with their defaults (ReceiptWaitOptions). */
function receiptBounds(clients: FirnClients): Required<ReceiptWaitOptions> {
  const o = clients.receiptWait ?? {};
  // The polling interval is chosen per chain (50 ms for a local anvil, 1 s by default), so 20 of
  // them is a few block times on either; capped at 12 s, one Ethereum slot.
  const poll = clients.public.pollingInterval;
  return {
    roundMs: o.roundMs ?? Math.min(12_000, Math.max(1_000, 20 * poll)),
    rounds: o.rounds ?? 5,
    resends: o.resends ?? 2,
  };
}

/**
 * Wait, in bounded rounds, for the receipt of a transaction this process sent at `nonce`. The
 * receipt is polled every polling interval (the first time at once: on an automining chain it is
 * there already, so a normal write makes one eth_getTransactionReceipt). After each round without
 * it, the account's mined nonce (eth_getTransactionCount at 'latest') is read:
 * - past `nonce`, and no hash we sent has a receipt: another transaction with this key replaced
 *   ours, FirnError E_CHAIN_REPLACED naming the nonce and hash;
 * - not past it, and our transaction is gone from the pool (eth_getTransactionByHash null, e.g.
 *   dropped after a base-fee spike): sent again at the same nonce with fresh fees, at most
 *   `resends` times;
 * - not past it, our transaction still in the pool, but the next block's base fee above its fee
 *   cap (a spike: it waits until the base fee falls back, maybe for hours): replaced at the same
 *   nonce with fees that clear it (`repricedFees`: each fee 10 % up at least, the replacement
 *   rule), at most `resends` times. A refused replacement leaves the one in the pool to wait on.
 * After the last round, FirnError E_CHAIN ("not mined after N s"). A round in which a read failed
 * (the RPC down or erring, not "not found") does not count: an outage is waited out, as the node's
 * proof submission through an outage relies on (tests/e2e/faults-chain.test.ts). Never returns a
 * receipt whose hash this process did not send.
 *
 * @param firstFees the fees `firstHash` was sent with.
 * @param resend sends the same call again at `nonce`, with the given fees; returns its hash.
 */
async function waitForOwnReceipt(
  clients: FirnClients,
  firstHash: Hex,
  nonce: number,
  firstFees: Fees,
  resend: (fees: Fees) => Promise<Hex>,
  context: string,
): Promise<TransactionReceipt> {
  const { roundMs, rounds, resends } = receiptBounds(clients);
  // The fees of the transaction last sent, and how many times one waiting in the pool was re-priced.
  let current = firstFees;
  let repriced = 0;
  const poll = Math.max(1, Math.min(clients.public.pollingInterval, roundMs));
  const address = requireWallet(clients).account.address;
  const sent: Hex[] = [firstHash];
  const started = Date.now();
  // Set when a read fails for another reason than "not found" (the RPC is down or erring): a round
  // in which the chain did not answer does not count, so an outage is waited out as before.
  let unreachable = false;
  const receiptOf = async (h: Hex): Promise<TransactionReceipt | undefined> => {
    try {
      const r = await clients.public.getTransactionReceipt({ hash: h });
      return r.transactionHash.toLowerCase() === h.toLowerCase() ? r : undefined;
    } catch (e) {
      if (!(e instanceof TransactionReceiptNotFoundError)) unreachable = true;
      return undefined;
    }
  };
  const anyReceipt = async (): Promise<TransactionReceipt | undefined> => {
    for (const h of sent) {
      const r = await receiptOf(h);
      if (r !== undefined) return r;
    }
    return undefined;
  };
  const facts = (): Record<string, string | number> => ({
    nonce,
    hash: sent[sent.length - 1]!,
    sent: sent.length,
  });
  for (let round = 0; round < rounds; round++) {
    const end = Date.now() + roundMs;
    unreachable = false;
    for (;;) {
      const r = await receiptOf(sent[sent.length - 1]!);
      if (r !== undefined) return r;
      if (Date.now() + poll > end) break;
      await new Promise((res) => setTimeout(res, poll));
    }
    let mined: number;
    try {
      mined = await clients.public.getTransactionCount({ address, blockTag: 'latest' });
    } catch {
      unreachable = true;
      mined = -1;
    }
    if (unreachable) {
      // The chain did not answer in this round: it says nothing about our transaction. Wait on.
      round--;
      continue;
    }
    if (mined > nonce) {
      const r = await anyReceipt();
      if (r !== undefined) return r;
      if (unreachable) {
        round--;
        continue;
      }
      throw new FirnError(
        'E_CHAIN_REPLACED',
        `${context}: transaction ${sent[sent.length - 1]} at nonce ${nonce} was replaced by another transaction of the same account (another process or wallet using this key); it was not mined`,
        { details: facts() },
      );
    }
    let known: boolean;
    try {
      known = await inPool(clients, sent[sent.length - 1]!);
    } catch {
      round--;
      continue;
    }
    if (sent.length <= resends && !known) {
      const fees = await freshFees(clients);
      try {
        sent.push(await resend(fees));
        current = fees;
      } catch (e) {
        // The nonce was taken meanwhile: the next round reports it as replaced.
        if (!(e instanceof BaseError && e.walk((x) => x instanceof NonceTooLowError))) throw e;
      }
    } else if (known && repriced < resends) {
      // Still in the pool: priced out by a base fee that rose after it was sent?
      const fees = await repricedFees(clients, current).catch(() => undefined);
      if (fees !== undefined) {
        repriced++;
        try {
          sent.push(await resend(fees));
          current = fees;
        } catch {
          // Refused (mined meanwhile, or the pool wants more): the one in the pool is still ours
          // to wait on, and the next round sees which.
        }
      }
    }
  }
  const r = await anyReceipt();
  if (r !== undefined) return r;
  const waitedMs = Date.now() - started;
  throw new FirnError(
    'E_CHAIN',
    `${context}: transaction ${sent[sent.length - 1]} at nonce ${nonce} not mined after ${Math.round(waitedMs / 1000)} s (${rounds} rounds of ${roundMs} ms); its fee may be below the chain's base fee, or the chain is not producing blocks`,
    { details: { ...facts(), waitedMs } },
  );
}

/** Whether the node still knows the transaction (in its pool or mined). */
async function inPool(clients: FirnClients, hash: Hex): Promise<boolean> {
  try {
    await clients.public.getTransaction({ hash });
    return true;
  } catch (e) {
    if (e instanceof TransactionNotFoundError) return false;
    throw e;
  }
}

/** Fees filled from the latest block (legacy gas price on a chain without base fees). */
async function freshFees(clients: FirnClients): Promise<Fees> {
  return clients.public.estimateFeesPerGas().then(
    (f): Fees => ({ maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas }),
    async () => ({ gasPrice: await clients.public.getGasPrice() }),
  );
}
