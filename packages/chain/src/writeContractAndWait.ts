import {
  type Abi,
  type Address,
  BaseError,
  FeeCapTooLowError,
  type Hex,
  NonceTooLowError,
  type TransactionReceipt,
} from 'viem';
import { ChainRevertedError, toChainError } from './ChainRevertedError.ts';
import { type FirnClients, requireWallet } from './clients.ts';

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
    // `chainId` is not in writeContract's type but is passed through to the request preparation,
    // which otherwise asks the RPC to fill the request (eth_fillTransaction) to learn it.
    const sendWith = (f: typeof fees): Promise<Hex> =>
      wallet.writeContract({
        ...sim.request,
        gas: (estimate * 3n) / 2n + 50_000n,
        nonce,
        ...f,
        chainId: clients.addresses.chainId,
        account: wallet.account,
        chain: wallet.chain ?? null,
      } as unknown as Parameters<typeof wallet.writeContract>[0]);
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
        if (e.walk((x) => x instanceof NonceTooLowError)) {
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
    const receipt = await clients.public.waitForTransactionReceipt({ hash });
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
    return { hash, receipt, result: sim.result as T };
  } catch (e) {
    throw toChainError(e, context);
  }
}
