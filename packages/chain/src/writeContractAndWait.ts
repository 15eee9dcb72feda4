import { FirnError } from '@firn/core';
import {
  type Abi,
  type Address,
  BaseError,
  encodeFunctionData,
  FeeCapTooLowError,
  type Hex,
  hexToBigInt,
  keccak256,
  NonceTooLowError,
  type TransactionReceipt,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  type TransactionSerializable,
} from 'viem';
import { getTransactionError } from 'viem/utils';
import { ChainRevertedError, toChainError } from './ChainRevertedError.ts';
import {
  FEE_CEILING_ENV,
  type FeeCeiling,
  type FirnClients,
  type ReceiptWaitOptions,
  requireWallet,
  resolveFeeCeiling,
} from './clients.ts';

export interface WriteRequest {
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  value?: bigint;
  /**
   * Called with each hash as soon as the node took the transaction (the first send, and a resend
   * or re-price at the same nonce), before its receipt is awaited, with the call's simulated
   * result. A caller that must not lose track of a write (an escrow) records it here: a receipt
   * can take a block or more, and a process interrupted meanwhile still knows what it sent.
   */
  onSent?: (hash: Hex, simulated: unknown) => void;
  /**
   * Called with each signed transaction's hash (keccak256 of the signed bytes, the hash the chain
   * will know it by) and the simulated result just before it is handed to the RPC: the first send
   * and every resend or re-price. A caller that must be able to find a write however the send ends
   * (the RPC takes it and never answers, the process dies before the answer) records the hash here
   * (decision 1760). When it throws, that transaction is not sent and the write fails with its
   * error. A hash given here may never reach the chain (the RPC refused it): `onSent` follows only
   * for a hash the RPC took.
   */
  onSigned?: (hash: Hex, simulated: unknown) => void;
}

export interface WriteResult<T = undefined> {
  hash: Hex;
  receipt: TransactionReceipt;
  /** The function's return value as simulated just before sending. */
  result: T;
}

/** Tail of the write queue of each sending account in this process (per chain). */
const queues = new Map<string, Promise<unknown>>();
/** Most gas one write signs for (a block's worth on Ethereum mainnet). */
export const MAX_WRITE_GAS = 30_000_000n;

/**
 * Simulate, send and wait for the receipt of one contract call. A revert (in simulation or in the
 * mined transaction) becomes a ChainRevertedError naming the custom error and its arguments. A
 * mined transaction that ran out of gas on a costlier path than the one estimated (another
 * transaction landed first) is simulated, estimated and sent once more.
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
 *   hash, waitedMs) or the RPC failed; FeeCeilingError (E_CHAIN) when the fees the chain asks for
 *   are above the clients' fee ceiling (`clients.feeCeiling`, decision 1470): nothing above it is
 *   ever signed, at the first send, the fee-cap retry, a resend or a re-price.
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

/**
 * FirnError E_UNAVAILABLE when `clients.signal` is aborted (the clients were closed, e.g. by a
 * daemon's stop), naming the write and whether it was sent (`details.sent`: the hash, when one is).
 */
function throwIfClosed(clients: FirnClients, context: string, sent?: Hex): void {
  if (clients.signal?.aborted !== true) return;
  throw new FirnError(
    'E_UNAVAILABLE',
    sent === undefined
      ? `${context}: not sent, the chain clients were closed`
      : `${context}: stopped waiting for its receipt, the chain clients were closed (it may still be mined)`,
    sent === undefined ? {} : { details: { hash: sent } },
  );
}

/** Resolves after `ms`, or at once when `signal` is aborted. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Times a write whose mined transaction ran out of gas on a path costlier than the one estimated
 * (another transaction landed first, e.g. the vote that reaches the quorum) is estimated again and
 * sent once more. Once: a call that runs out of gas again is reported.
 */
const OUT_OF_GAS_RESENDS = 1;

async function send<T>(
  clients: FirnClients,
  req: WriteRequest,
  outOfGasResends = OUT_OF_GAS_RESENDS,
): Promise<WriteResult<T>> {
  const wallet = requireWallet(clients);
  const context = `${req.functionName}`;
  // A write queued behind another of the account, whose clients were closed meanwhile, never sends.
  throwIfClosed(clients, context);
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
    const ceiling = feeCeilingOf(clients);
    let [nonce, fees] = await Promise.all([
      clients.public.getTransactionCount({ address: wallet.account.address, blockTag: 'pending' }),
      freshFees(clients, ceiling, context),
    ]);
    // Every field is filled here (chain id, nonce, fees, gas), signed with the local key and sent
    // raw: nothing asks the RPC to fill the request (eth_fillTransaction, eth_chainId), and the
    // same call goes again at the same nonce with other fees (a resend, a re-price).
    const data = encodeFunctionData({ abi: req.abi, functionName: req.functionName, args: req.args });
    const gas = gasWithinCap(estimate, context);
    // Every hash signed for this write, recorded before it is broadcast: a transaction the node
    // took whose answer was lost (a timeout on a loaded machine) is still found as ours when mined.
    const signed: Hex[] = [];
    const beforeSend = (h: Hex) => {
      signed.push(h);
      req.onSigned?.(h, sim.result);
    };
    const signAndSend = (f: Fees): Promise<Hex> =>
      sendSigned(
        clients,
        ceiling,
        context,
        {
          chainId: clients.addresses.chainId,
          to: req.address,
          data,
          gas,
          nonce,
          ...(req.value === undefined ? {} : { value: req.value }),
          ...('gasPrice' in f
            ? { type: 'legacy', gasPrice: f.gasPrice }
            : {
                type: 'eip1559',
                maxFeePerGas: f.maxFeePerGas,
                maxPriorityFeePerGas: f.maxPriorityFeePerGas,
              }),
        },
        beforeSend,
      );
    const sendWith = async (f: Fees): Promise<Hex> => {
      const h = await signAndSend(f);
      try {
        req.onSent?.(h, sim.result);
      } catch {
        // The transaction is out: a failing observer must not turn a sent write into a failed one.
      }
      return h;
    };
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
          const tip = fees.maxPriorityFeePerGas;
          fees = within(
            ceiling,
            { maxFeePerGas: next.baseFeePerGas * 2n + tip, maxPriorityFeePerGas: tip },
            { maxFeePerGas: next.baseFeePerGas + tip, maxPriorityFeePerGas: tip },
            context,
            "the next block's base fee plus the tip, after the node refused the fee cap as too low",
          );
        } else throw e;
      }
    }
    const receipt = await waitForOwnReceipt(clients, ceiling, hash, nonce, fees, sendWith, context, signed);
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
      // Out of the gas it was given, though the call succeeds on the state before and after its
      // block: a transaction mined first made it take a costlier path than the one estimated (the
      // vote that reaches the quorum activates the node and records every approver's work: three
      // times a plain vote's gas, more with more voters). Its revert changed nothing: estimated
      // again on the state now, it is sent once more (decision 1834), instead of losing the write.
      if (receipt.gasUsed >= gas && outOfGasResends > 0)
        return await send<T>(clients, req, outOfGasResends - 1);
      throw new ChainRevertedError(undefined, undefined, context);
    }
    return { hash: receipt.transactionHash, receipt, result: sim.result as T };
  } catch (e) {
    throw toChainError(e, context);
  }
}

export type Fees = { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint };

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
 * Sign `tx` with the wallet's local key and send it raw (eth_sendRawTransaction), after checking
 * its fees against `ceiling` (FeeCeilingError, nothing signed). Node errors are
 * mapped as viem's sendTransaction maps them (NonceTooLowError, FeeCapTooLowError, ...), so the
 * callers' `walk` checks see the same classes. `beforeSend` gets the signed transaction's hash
 * (keccak256 of the signed bytes) before it leaves this process; when it throws, nothing is sent
 * and its error is thrown as is.
 */
async function sendSigned(
  clients: FirnClients,
  ceiling: FeeCeiling,
  context: string,
  tx: TransactionSerializable,
  beforeSend?: (hash: Hex) => void,
): Promise<Hex> {
  // The last check before the key signs: whatever path chose the fees, none above the ceiling.
  assertWithinCeiling(ceiling, tx, context);
  const wallet = requireWallet(clients);
  const account = wallet.account;
  if (account.type !== 'local' || account.signTransaction === undefined)
    throw new FirnError(
      'E_INVALID_INPUT',
      'chain writes need a local key (create the clients with a private key)',
    );
  try {
    const serializedTransaction = await account.signTransaction(tx);
    beforeSend?.(keccak256(serializedTransaction));
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
 * A chain without base fees is never re-priced here (nothing tells a stuck legacy price). The cap's
 * head-room is trimmed to the ceiling; when even the least valid replacement is above it,
 * FeeCeilingError. Undefined too when the pending block cannot be read.
 */
async function repricedFees(
  clients: FirnClients,
  ceiling: FeeCeiling,
  current: Fees,
  context: string,
): Promise<Fees | undefined> {
  let next: bigint | null | undefined;
  try {
    next = (await clients.public.getBlock({ blockTag: 'pending' })).baseFeePerGas;
  } catch {
    return undefined;
  }
  if (next === null || next === undefined) return undefined;
  const bump = (x: bigint) => (x * 11n) / 10n + 1n;
  const why =
    "a replacement of the write priced out in the pool: 10 % over its fees and the next block's base fee";
  if ('gasPrice' in current) {
    if (current.gasPrice >= next) return undefined;
    return within(
      ceiling,
      { gasPrice: maxBig(bump(current.gasPrice), next * 2n) },
      { gasPrice: maxBig(bump(current.gasPrice), next) },
      context,
      why,
    );
  }
  if (current.maxFeePerGas >= next) return undefined;
  const maxPriorityFeePerGas = bump(current.maxPriorityFeePerGas);
  return within(
    ceiling,
    {
      maxFeePerGas: maxBig(bump(current.maxFeePerGas), next * 2n + maxPriorityFeePerGas),
      maxPriorityFeePerGas,
    },
    { maxFeePerGas: maxBig(bump(current.maxFeePerGas), next + maxPriorityFeePerGas), maxPriorityFeePerGas },
    context,
    why,
  );
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
 * Pauses before the 2nd, 3rd, ... receipt read of a write, ms, each at most the polling interval;
 * then the polling interval. A chain that mines on every transaction (anvil) serves the receipt a
 * few ms after it took the transaction, later when it is busy: a miss at the first read then costs
 * a few ms, not a whole polling interval (200 ms on a node's job clients). On a chain with 12 s
 * blocks it is four reads more per write.
 */
const FIRST_RECEIPT_PAUSES_MS = [10, 20, 40, 80] as const;

/**
 * Wait, in bounded rounds, for the receipt of a transaction this process sent at `nonce`. The
 * receipt is polled at once (on an automining chain it is there already, so a normal write makes
 * one eth_getTransactionReceipt), then after FIRST_RECEIPT_PAUSES_MS, then every polling interval. After each round without
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
 * @param signed every hash signed for this write so far, recorded before each was broadcast (read
 *   live): a resend the node took but whose answer was lost still counts as ours.
 */
async function waitForOwnReceipt(
  clients: FirnClients,
  ceiling: FeeCeiling,
  firstHash: Hex,
  nonce: number,
  firstFees: Fees,
  resend: (fees: Fees) => Promise<Hex>,
  context: string,
  signed: readonly Hex[] = [],
): Promise<TransactionReceipt> {
  const { roundMs, rounds, resends } = receiptBounds(clients);
  // The fees of the transaction last sent, and how many times one waiting in the pool was re-priced.
  let current = firstFees;
  let repriced = 0;
  // Set when a re-price would have needed fees above the ceiling: the write keeps waiting on the
  // one in the pool, and fails with this error (not "not mined") if it is never mined.
  let overCeiling: FeeCeilingError | undefined;
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
    // What this process sent, and every other hash it signed for this nonce (a resend whose
    // answer was lost may have been taken and mined).
    for (const h of new Set([...sent, ...signed])) {
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
  let polls = 0;
  for (let round = 0; round < rounds; round++) {
    const end = Date.now() + roundMs;
    unreachable = false;
    for (;;) {
      const r = await receiptOf(sent[sent.length - 1]!);
      if (r !== undefined) return r;
      // Closed clients stop waiting, even through an outage that would otherwise be waited out.
      throwIfClosed(clients, context, sent[sent.length - 1]!);
      if (Date.now() + poll > end) break;
      await pause(Math.min(poll, FIRST_RECEIPT_PAUSES_MS[polls++] ?? poll), clients.signal);
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
      let r = await anyReceipt();
      // The account's nonce can be ahead of the receipt an RPC serves (a node that indexes
      // receipts after it applies the block, a load balancer whose nodes lag each other): the
      // nonce taken is judged "replaced" only after the receipts were asked again for a while.
      for (let k = 0; r === undefined && !unreachable && k < REPLACED_RECHECKS; k++) {
        await pause(Math.max(REPLACED_RECHECK_MIN_MS, poll) * 2 ** k, clients.signal);
        throwIfClosed(clients, context, sent[sent.length - 1]!);
        r = await anyReceipt();
      }
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
      const fees = await freshFees(clients, ceiling, context);
      try {
        sent.push(await resend(fees));
        current = fees;
      } catch (e) {
        // The nonce was taken meanwhile: the next round reports it as replaced. An answer lost
        // after the node took the resend (it knows the hash just signed): the next rounds wait on it.
        if (!(e instanceof BaseError && e.walk((x) => x instanceof NonceTooLowError))) {
          const last = signed[signed.length - 1];
          if (last === undefined || sent.includes(last) || !(await inPool(clients, last).catch(() => false)))
            throw e;
          sent.push(last);
        }
      }
    } else if (known && repriced < resends && overCeiling === undefined) {
      // Still in the pool: priced out by a base fee that rose after it was sent?
      let fees: Fees | undefined;
      try {
        fees = await repricedFees(clients, ceiling, current, context);
      } catch (e) {
        if (!(e instanceof FeeCeilingError)) throw e;
        overCeiling = e;
      }
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
  if (overCeiling !== undefined)
    throw new FeeCeilingError(
      overCeiling.fee,
      overCeiling.wanted,
      overCeiling.ceiling,
      `${context} (transaction ${sent[sent.length - 1]} at nonce ${nonce}, not mined after ${Math.round(waitedMs / 1000)} s, stays in the pool and may still be mined when the base fee falls)`,
      overCeiling.why,
    );
  throw new FirnError(
    'E_CHAIN',
    `${context}: transaction ${sent[sent.length - 1]} at nonce ${nonce} not mined after ${Math.round(waitedMs / 1000)} s (${rounds} rounds of ${roundMs} ms); its fee may be below the chain's base fee, or the chain is not producing blocks`,
    { details: { ...facts(), waitedMs } },
  );
}

/**
 * Times the receipts are asked again, after REPLACED_RECHECK_MIN_MS (or the polling interval)
 * doubling, before a nonce found taken without a receipt of ours is reported E_CHAIN_REPLACED:
 * about 0.7 s at least in all.
 */
const REPLACED_RECHECKS = 3;
const REPLACED_RECHECK_MIN_MS = 100;

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

/**
 * The gas limit to sign for a transaction whose `estimate` (gas, from eth_estimateGas) came from
 * the RPC: 1.5 x estimate + 50,000 of head-room (another transaction landing first can make the call
 * take a costlier path). The gas limit comes from the untrusted RPC like the fees, and gas x fee is
 * what a signed transaction may cost, so it is bounded like them: at most MAX_WRITE_GAS (30M, a
 * block's worth on Ethereum mainnet; firn's writes need well under 1M, its largest contract
 * creation about 6M). Used by every write and every contract creation (decision 1540).
 * @throws FeeCeilingError (E_CHAIN, fee 'gas') when the limit would exceed MAX_WRITE_GAS; nothing
 *   is signed.
 */
export function gasWithinCap(estimate: bigint, context: string): bigint {
  const gas = (estimate * 3n) / 2n + 50_000n;
  if (gas > MAX_WRITE_GAS)
    throw new FeeCeilingError(
      'gas',
      gas,
      MAX_WRITE_GAS,
      context,
      `the RPC's gas estimate is ${estimate} gas`,
    );
  return gas;
}

/**
 * Sign `tx` (every field filled by the caller: chain id, nonce, gas, fees) with the clients' local
 * key and send it raw, for a transaction outside writeContractAndWait (a contract creation, the
 * nudge). Never through viem's sendTransaction/deployContract: their request preparation asks the
 * RPC to fill the transaction (eth_fillTransaction), and an answer marked as co-signed by a fee
 * payer replaces the gas and fees passed. FeeCeilingError (nothing signed) for a gas limit over
 * MAX_WRITE_GAS or a fee over the ceiling.
 */
export function sendFilledWithinCaps(
  clients: FirnClients,
  context: string,
  tx: TransactionSerializable,
): Promise<Hex> {
  if (tx.gas === undefined || tx.nonce === undefined || tx.chainId === undefined)
    throw new FirnError(
      'E_INVALID_INPUT',
      `${context}: chain id, nonce and gas must be filled before signing`,
    );
  if (tx.gas > MAX_WRITE_GAS)
    throw new FeeCeilingError('gas', tx.gas, MAX_WRITE_GAS, context, 'the gas limit about to be signed');
  return sendSigned(clients, feeCeilingOf(clients), context, tx);
}

/**
 * Fees for a transaction signed outside writeContractAndWait (a contract creation): freshFees
 * within the clients' ceiling (decision 1470). FeeCeilingError when the RPC asks more.
 */
export function feesWithinCeiling(clients: FirnClients, context: string): Promise<Fees> {
  return freshFees(clients, feeCeilingOf(clients), context);
}

/**
 * Fees filled from the latest block, as viem's estimateFeesPerGas fills them (the same requests:
 * the latest block and eth_maxPriorityFeePerGas, else eth_gasPrice minus the base fee): tip as the
 * RPC names it, cap = 1.2 x base fee + tip. A chain without base fees gets eth_gasPrice as a legacy
 * gas price. Bounded by `ceiling` (`within`): the cap's head-room is trimmed to it; a tip above the
 * tip ceiling, base fee + tip (or a gas price) above the fee ceiling, is FeeCeilingError.
 */
async function freshFees(clients: FirnClients, ceiling: FeeCeiling, context: string): Promise<Fees> {
  const [block, named] = await Promise.all([
    clients.public.getBlock({ blockTag: 'latest' }),
    clients.public
      .request({ method: 'eth_maxPriorityFeePerGas' })
      .then((x) => hexToBigInt(x))
      .catch(() => undefined),
  ]);
  const base = block.baseFeePerGas;
  if (base === null || base === undefined) {
    const gasPrice = await clients.public.getGasPrice();
    return within(ceiling, { gasPrice }, { gasPrice }, context, 'the gas price the RPC names (eth_gasPrice)');
  }
  let tip = named;
  if (tip === undefined) {
    const gasPrice = await clients.public.getGasPrice();
    tip = gasPrice > base ? gasPrice - base : 0n;
  }
  return within(
    ceiling,
    { maxFeePerGas: (base * 12n) / 10n + tip, maxPriorityFeePerGas: tip },
    { maxFeePerGas: base + tip, maxPriorityFeePerGas: tip },
    context,
    "the latest block's base fee plus the tip the RPC names (eth_maxPriorityFeePerGas)",
  );
}

/**
 * The fees clients sign with at most (decision 1470): `clients.feeCeiling`, else resolved from the
 * environment and defaults (clients built by hand, not by createFirnClients).
 */
function feeCeilingOf(clients: FirnClients): FeeCeiling {
  return clients.feeCeiling ?? resolveFeeCeiling();
}

/**
 * `wanted` (what the write would sign: the chain's ask plus head-room) bounded by `ceiling`, when
 * `least` (the least that can be mined or accepted: base fee + tip, a replacement's minimum) is
 * within it: each fee is min(wanted, ceiling), never below `least`.
 *
 * @throws FeeCeilingError naming the first fee of `least` above its ceiling, and `why` it is asked.
 */
function within(ceiling: FeeCeiling, wanted: Fees, least: Fees, context: string, why: string): Fees {
  if ('gasPrice' in wanted) {
    const floor = 'gasPrice' in least ? least.gasPrice : wanted.gasPrice;
    if (floor > ceiling.maxFeePerGas)
      throw new FeeCeilingError('gasPrice', floor, ceiling.maxFeePerGas, context, why);
    return { gasPrice: minBig(wanted.gasPrice, ceiling.maxFeePerGas) };
  }
  const floor = 'maxFeePerGas' in least ? least : wanted;
  if (floor.maxPriorityFeePerGas > ceiling.maxPriorityFeePerGas)
    throw new FeeCeilingError(
      'maxPriorityFeePerGas',
      floor.maxPriorityFeePerGas,
      ceiling.maxPriorityFeePerGas,
      context,
      why,
    );
  if (floor.maxFeePerGas > ceiling.maxFeePerGas)
    throw new FeeCeilingError('maxFeePerGas', floor.maxFeePerGas, ceiling.maxFeePerGas, context, why);
  return {
    maxFeePerGas: maxBig(minBig(wanted.maxFeePerGas, ceiling.maxFeePerGas), floor.maxFeePerGas),
    maxPriorityFeePerGas: floor.maxPriorityFeePerGas,
  };
}

/**
 * The check before signing: no fee of `tx` above `ceiling`, and the tip never above the cap it is
 * signed with (decision 1470). FeeCeilingError otherwise; `tx` is then never signed.
 */
function assertWithinCeiling(ceiling: FeeCeiling, tx: TransactionSerializable, context: string): void {
  const why = 'the fees of the transaction about to be signed';
  if (tx.gasPrice !== undefined && tx.gasPrice > ceiling.maxFeePerGas)
    throw new FeeCeilingError('gasPrice', tx.gasPrice, ceiling.maxFeePerGas, context, why);
  if (tx.maxFeePerGas !== undefined && tx.maxFeePerGas > ceiling.maxFeePerGas)
    throw new FeeCeilingError('maxFeePerGas', tx.maxFeePerGas, ceiling.maxFeePerGas, context, why);
  if (tx.maxPriorityFeePerGas !== undefined) {
    const tipCeiling = minBig(ceiling.maxPriorityFeePerGas, tx.maxFeePerGas ?? ceiling.maxFeePerGas);
    if (tx.maxPriorityFeePerGas > tipCeiling)
      throw new FeeCeilingError('maxPriorityFeePerGas', tx.maxPriorityFeePerGas, tipCeiling, context, why);
  }
}

const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Wei per gas in gwei for a message ("0.000000001", "500", "100000"). */
function gwei(wei: bigint): string {
  const whole = wei / 10n ** 9n;
  const frac = (wei % 10n ** 9n).toString().padStart(9, '0').replace(/0+$/, '');
  return frac === '' ? whole.toString() : `${whole}.${frac}`;
}

/**
 * A write refused before signing: the fee it would need (`fee`, wei per gas) is above the clients'
 * ceiling (FeeCeiling, decision 1470). Code E_CHAIN, so callers that retry chain failures (the
 * node's retryChain) try again later, when a spike has passed; details: fee, wantedWei,
 * ceilingWei, setting (the environment variable that raises it). Either the RPC lies about the
 * fees, or the chain's fees are above what this operator agreed to pay.
 */
export class FeeCeilingError extends FirnError {
  override readonly name = 'FeeCeilingError';
  /**
   * @param fee the field refused; 'gas' is the gas limit (wanted and ceiling in gas, ceiling
   *   MAX_WRITE_GAS, details wantedGas/ceilingGas, no setting), the others are wei per gas.
   */
  constructor(
    readonly fee: 'maxFeePerGas' | 'maxPriorityFeePerGas' | 'gasPrice' | 'gas',
    readonly wanted: bigint,
    readonly ceiling: bigint,
    context: string,
    readonly why: string,
  ) {
    super('E_CHAIN', ...feeCeilingText(fee, wanted, ceiling, context, why));
  }
}

/** FeeCeilingError's message and details: fees in gwei with the setting that raises them, gas in gas. */
function feeCeilingText(
  fee: FeeCeilingError['fee'],
  wanted: bigint,
  ceiling: bigint,
  context: string,
  why: string,
): [string, { details: Record<string, string> }] {
  if (fee === 'gas')
    return [
      `${context}: not sent: its gas limit would be ${wanted} gas (${why}, with head-room), above the ${ceiling} gas any transaction may sign; the RPC is wrong about the call's cost, use another RPC`,
      { details: { fee, wantedGas: wanted.toString(), ceilingGas: ceiling.toString() } },
    ];
  const setting =
    fee === 'maxPriorityFeePerGas' ? FEE_CEILING_ENV.maxPriorityFeePerGas : FEE_CEILING_ENV.maxFeePerGas;
  const field = fee === 'maxPriorityFeePerGas' ? 'maxPriorityFeePerGas' : 'maxFeePerGas';
  return [
    `${context}: not sent: its ${fee} would be ${gwei(wanted)} gwei, above this account's ceiling of ${gwei(ceiling)} gwei (${why}); if the chain really asks this much (check the RPC), raise the ceiling: set ${setting} (gwei) or pass feeCeiling.${field} (wei) to createFirnClients`,
    { details: { fee, wantedWei: wanted.toString(), ceilingWei: ceiling.toString(), setting } },
  ];
}
