import { FirnError, InvalidInputError } from '@firn/core';
import {
  type Address,
  encodeAbiParameters,
  type Hex,
  keccak256,
  parseAbi,
  parseEventLogs,
  toHex,
} from 'viem';
import { toChainError } from '../ChainRevertedError.ts';
import type { FirnClients } from '../clients.ts';
import { assertAddress, assertBytes32 } from '../validate.ts';
import { type WriteResult, writeContractAndWait } from '../writeContractAndWait.ts';

/**
 * The part of OpenZeppelin 5 `TimelockController` (governance/TimelockController.sol) that firn's
 * governance uses: schedule one call, read its state, execute it. Written out so that viem types
 * every argument; the deployed bytecode is OpenZeppelin's own (see deploy.ts).
 */
export const timelockControllerAbi = parseAbi([
  'function schedule(address target, uint256 value, bytes data, bytes32 predecessor, bytes32 salt, uint256 delay)',
  'function execute(address target, uint256 value, bytes payload, bytes32 predecessor, bytes32 salt) payable',
  'function scheduleBatch(address[] targets, uint256[] values, bytes[] payloads, bytes32 predecessor, bytes32 salt, uint256 delay)',
  'function executeBatch(address[] targets, uint256[] values, bytes[] payloads, bytes32 predecessor, bytes32 salt) payable',
  'function hashOperationBatch(address[] targets, uint256[] values, bytes[] payloads, bytes32 predecessor, bytes32 salt) pure returns (bytes32)',
  'function cancel(bytes32 id)',
  'function hashOperation(address target, uint256 value, bytes data, bytes32 predecessor, bytes32 salt) pure returns (bytes32)',
  'function getMinDelay() view returns (uint256)',
  'function getTimestamp(bytes32 id) view returns (uint256)',
  'function getOperationState(bytes32 id) view returns (uint8)',
  'function hasRole(bytes32 role, address account) view returns (bool)',
  'function PROPOSER_ROLE() view returns (bytes32)',
  'function EXECUTOR_ROLE() view returns (bytes32)',
  'event CallScheduled(bytes32 indexed id, uint256 indexed index, address target, uint256 value, bytes data, bytes32 predecessor, uint256 delay)',
  'event CallExecuted(bytes32 indexed id, uint256 indexed index, address target, uint256 value, bytes data)',
  'event Cancelled(bytes32 indexed id)',
  'event MinDelayChange(uint256 oldDuration, uint256 newDuration)',
  'error TimelockInvalidOperationLength(uint256 targets, uint256 payloads, uint256 values)',
  'error TimelockInsufficientDelay(uint256 delay, uint256 minDelay)',
  'error TimelockUnexpectedOperationState(bytes32 operationId, bytes32 expectedStates)',
  'error TimelockUnexecutedPredecessor(bytes32 predecessorId)',
  'error TimelockUnauthorizedCaller(address caller)',
  'error AccessControlUnauthorizedAccount(address account, bytes32 neededRole)',
]);

/** TimelockController.OperationState (same numbers). */
export enum OperationState {
  Unset = 0,
  Waiting = 1,
  Ready = 2,
  Done = 3,
}

/** One call the timelock will make: `target.call{value}(data)`. */
export interface TimelockCall {
  target: Address;
  /** Wei sent with the call (default 0). */
  value?: bigint;
  /** ABI-encoded calldata (e.g. from viem's encodeFunctionData). */
  data: Hex;
}

/** A scheduled operation: everything `execute` needs, and when it becomes executable. */
export interface ScheduledOperation {
  timelock: Address;
  /** TimelockController.hashOperation of the call, predecessor and salt. */
  id: Hex;
  /** One call (schedule/execute) or several run in order in one transaction (scheduleBatch/executeBatch). */
  calls: Required<TimelockCall>[];
  predecessor: Hex;
  salt: Hex;
  /** Unix seconds (chain time) from which `execute` succeeds. */
  readyAt: bigint;
  scheduleTx: Hex;
}

const ZERO32 = `0x${'0'.repeat(64)}` as Hex;

/**
 * The operation id as the contract computes it (TimelockController.sol): for one call
 * keccak256(abi.encode(target, value, data, predecessor, salt)) (`hashOperation`), for several
 * keccak256(abi.encode(targets, values, payloads, predecessor, salt)) (`hashOperationBatch`).
 */
export function hashTimelockOperation(
  calls: readonly TimelockCall[],
  predecessor: Hex = ZERO32,
  salt: Hex = ZERO32,
): Hex {
  if (calls.length === 0) throw new InvalidInputError('a timelock operation needs at least one call');
  const tail = [assertBytes32(predecessor, 'predecessor'), assertBytes32(salt, 'salt')] as const;
  if (calls.length === 1) {
    const c = calls[0]!;
    return keccak256(
      encodeAbiParameters(
        [
          { type: 'address' },
          { type: 'uint256' },
          { type: 'bytes' },
          { type: 'bytes32' },
          { type: 'bytes32' },
        ],
        [assertAddress(c.target, 'target'), c.value ?? 0n, c.data, ...tail],
      ),
    );
  }
  return keccak256(
    encodeAbiParameters(
      [
        { type: 'address[]' },
        { type: 'uint256[]' },
        { type: 'bytes[]' },
        { type: 'bytes32' },
        { type: 'bytes32' },
      ],
      [
        calls.map((c, i) => assertAddress(c.target, `targets[${i}]`)),
        calls.map((c) => c.value ?? 0n),
        calls.map((c) => c.data),
        ...tail,
      ],
    ),
  );
}

/** The timelock's minimum delay, seconds. */
export async function getTimelockDelay(clients: FirnClients, timelock: Address): Promise<bigint> {
  try {
    return await clients.public.readContract({
      address: timelock,
      abi: timelockControllerAbi,
      functionName: 'getMinDelay',
    });
  } catch (e) {
    throw toChainError(e, 'getMinDelay');
  }
}

/** State of an operation and the chain time it becomes (or became) ready (0 when Unset, 1 when Done). */
export async function getOperation(
  clients: FirnClients,
  timelock: Address,
  id: Hex,
): Promise<{ state: OperationState; readyAt: bigint }> {
  assertBytes32(id, 'operation id');
  try {
    const [state, readyAt] = await Promise.all([
      clients.public.readContract({
        address: timelock,
        abi: timelockControllerAbi,
        functionName: 'getOperationState',
        args: [id],
      }),
      clients.public.readContract({
        address: timelock,
        abi: timelockControllerAbi,
        functionName: 'getTimestamp',
        args: [id],
      }),
    ]);
    return { state: state as OperationState, readyAt };
  } catch (e) {
    throw toChainError(e, 'getOperationState');
  }
}

export interface ScheduleParams {
  timelock: Address;
  /** Run in order, all or nothing, when the operation executes. */
  calls: readonly TimelockCall[];
  /** Seconds; default and minimum: the timelock's minimum delay. */
  delay?: bigint;
  /** Distinguishes two operations with the same calls (default: 32 random bytes). */
  salt?: Hex;
  predecessor?: Hex;
}

/**
 * Proposer: schedule calls on the timelock (`schedule` for one, `scheduleBatch` for several).
 * Reverts (ChainRevertedError) AccessControlUnauthorizedAccount when the sender lacks
 * PROPOSER_ROLE, TimelockInsufficientDelay when `delay` is under the minimum.
 */
export async function scheduleOperation(
  clients: FirnClients,
  p: ScheduleParams,
): Promise<ScheduledOperation> {
  const timelock = assertAddress(p.timelock, 'timelock');
  const delay = p.delay ?? (await getTimelockDelay(clients, timelock));
  const salt = p.salt ?? toHex(crypto.getRandomValues(new Uint8Array(32)));
  const predecessor = p.predecessor ?? ZERO32;
  if (p.calls.length === 0) throw new InvalidInputError('a timelock operation needs at least one call');
  const calls = p.calls.map((c, i) => {
    if (!/^0x([0-9a-fA-F]{2})*$/.test(c.data))
      throw new InvalidInputError(`calls[${i}].data must be 0x hex bytes`);
    return { target: assertAddress(c.target, `calls[${i}].target`), value: c.value ?? 0n, data: c.data };
  });
  const one = calls.length === 1 ? calls[0] : undefined;
  const res = one
    ? await writeContractAndWait(clients, {
        address: timelock,
        abi: timelockControllerAbi,
        functionName: 'schedule',
        args: [one.target, one.value, one.data, predecessor, salt, delay],
      })
    : await writeContractAndWait(clients, {
        address: timelock,
        abi: timelockControllerAbi,
        functionName: 'scheduleBatch',
        args: [
          calls.map((c) => c.target),
          calls.map((c) => c.value),
          calls.map((c) => c.data),
          predecessor,
          salt,
          delay,
        ],
      });
  const [ev] = parseEventLogs({
    abi: timelockControllerAbi,
    eventName: 'CallScheduled',
    logs: res.receipt.logs,
  });
  if (!ev) throw new FirnError('E_CHAIN', 'schedule: no CallScheduled event in the receipt');
  const id = ev.args.id;
  if (id !== hashTimelockOperation(calls, predecessor, salt))
    throw new FirnError('E_CHAIN', 'schedule: the timelock reported another operation id than hashOperation');
  const { readyAt } = await getOperation(clients, timelock, id);
  return { timelock, id, calls, predecessor, salt, readyAt, scheduleTx: res.hash };
}

/** Progress of a wait for the timelock delay, for a progress bar or plain log lines. */
export interface DelayProgress {
  /** Seconds of the delay already passed (chain time), capped at `total`. */
  elapsed: number;
  total: number;
  /** Latest block's timestamp. */
  chainTime: bigint;
}

export interface WaitForOperationOptions {
  onProgress?: (p: DelayProgress) => void;
  /** Poll period, ms (default 500). */
  pollMs?: number;
  /** Give up after this many ms past readyAt by the local clock (default 120 000). */
  graceMs?: number;
}

/**
 * Wait until the operation is Ready by the chain's clock (the latest block's timestamp, which is
 * what `execute` is judged by). Throws E_TIMEOUT when the chain produces no block past readyAt in
 * time, E_CHAIN when the operation was cancelled.
 */
export async function waitForOperation(
  clients: FirnClients,
  op: Pick<ScheduledOperation, 'timelock' | 'id' | 'readyAt'>,
  opts: WaitForOperationOptions = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 500;
  const start = await clients.public.getBlock({ blockTag: 'latest' });
  const total = Number(op.readyAt > start.timestamp ? op.readyAt - start.timestamp : 0n);
  const begin = op.readyAt - BigInt(total);
  const giveUpAt = Date.now() + total * 1000 + (opts.graceMs ?? 120_000);
  for (;;) {
    const block = await clients.public.getBlock({ blockTag: 'latest' });
    const elapsed = Math.min(total, Math.max(0, Number(block.timestamp - begin)));
    opts.onProgress?.({ elapsed, total, chainTime: block.timestamp });
    const { state } = await getOperation(clients, op.timelock, op.id);
    if (state === OperationState.Ready || state === OperationState.Done) return;
    if (state === OperationState.Unset)
      throw new FirnError('E_CHAIN', `timelock operation ${op.id} is not scheduled (cancelled?)`);
    if (Date.now() > giveUpAt)
      throw new FirnError(
        'E_TIMEOUT',
        `timelock operation ${op.id} not ready: chain time ${block.timestamp} < ${op.readyAt}`,
      );
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Executor: run a Ready operation. Reverts with TimelockUnexpectedOperationState while it is still
 * Waiting, and with the target's own custom error when the call itself fails.
 */
export async function executeOperation(
  clients: FirnClients,
  op: Pick<ScheduledOperation, 'timelock' | 'calls' | 'predecessor' | 'salt'>,
): Promise<WriteResult> {
  const value = op.calls.reduce((a, c) => a + c.value, 0n);
  const one = op.calls.length === 1 ? op.calls[0] : undefined;
  if (one)
    return writeContractAndWait(clients, {
      address: op.timelock,
      abi: timelockControllerAbi,
      functionName: 'execute',
      args: [one.target, one.value, one.data, op.predecessor, op.salt],
      value,
    });
  return writeContractAndWait(clients, {
    address: op.timelock,
    abi: timelockControllerAbi,
    functionName: 'executeBatch',
    args: [
      op.calls.map((c) => c.target),
      op.calls.map((c) => c.value),
      op.calls.map((c) => c.data),
      op.predecessor,
      op.salt,
    ],
    value,
  });
}

export type GovernanceStep =
  | { step: 'scheduled'; op: ScheduledOperation }
  | { step: 'waiting'; progress: DelayProgress }
  | { step: 'executed'; op: ScheduledOperation; hash: Hex };

/**
 * Proposer and executor in one: schedule `calls`, wait out the delay, execute. `onStep` sees each
 * stage (for the CLI's progress display). On a devnet where blocks come only with transactions,
 * `nudge` (e.g. anvil's evm_mine) is called while waiting so chain time follows wall time.
 */
export async function governAndExecute(
  clients: FirnClients,
  p: ScheduleParams & {
    onStep?: (s: GovernanceStep) => void;
    nudge?: () => Promise<void>;
    pollMs?: number;
  },
): Promise<{ op: ScheduledOperation; execution: WriteResult }> {
  const op = await scheduleOperation(clients, p);
  p.onStep?.({ step: 'scheduled', op });
  // At most one nudge a second, so chain time follows wall time rather than racing ahead.
  let lastNudge = 0;
  await waitForOperation(clients, op, {
    ...(p.pollMs === undefined ? {} : { pollMs: p.pollMs }),
    onProgress: (progress) => {
      p.onStep?.({ step: 'waiting', progress });
      if (p.nudge && progress.elapsed < progress.total && Date.now() - lastNudge >= 1000) {
        lastNudge = Date.now();
        void p.nudge().catch(() => {});
      }
    },
  });
  const execution = await executeOperation(clients, op);
  p.onStep?.({ step: 'executed', op, hash: execution.hash });
  return { op, execution };
}
