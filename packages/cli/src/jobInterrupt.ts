import { constants } from 'node:os';
import {
  createFirnClients,
  type FirnDeployment,
  firnJobMarketAbi,
  getJob,
  getWithdrawable,
  JobStatus,
  reclaimJob,
  withdrawCredits,
} from '@firn/chain';
import type { PostJobSent } from '@firn/client';
import type { Hex } from '@firn/core';
import { parseEventLogs } from 'viem';
import { redactRpcUrl } from './rpcUrl.ts';
import { privateKeyToAccount } from 'viem/accounts';

/** The signals a user or a closing terminal sends to end `firn infer|train|run`. */
export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The shell's exit code of a process ended by `signal`: 128 + its number (SIGINT 130, SIGHUP 129, SIGTERM 143). */
export function interruptExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 2);
}

/** What an interrupt did to the job in flight. */
export type InterruptOutcome =
  /** It was still Open: reclaimed, the escrow withdrawn to the requester. */
  | { reclaimed: true }
  /** A node has it (or it ended): its result stays fetchable with `firn job result`. */
  | { reclaimed: false; status: string };

/**
 * Reclaim `jobId` when it is still Open on chain (escrow back to the requester, then withdrawn);
 * else report its status. A claim that races the reclaim makes the reclaim revert: the job is read
 * again and reported as it then is. Chain errors propagate (the caller prints the way forward).
 */
export async function reclaimIfOpen(
  c: { rpcUrl: string; deployment: FirnDeployment; requesterKey: Hex },
  jobId: Hex,
): Promise<InterruptOutcome> {
  const clients = createFirnClients(c.rpcUrl, c.requesterKey, c.deployment, { pollingIntervalMs: 100 });
  const j = await getJob(clients, jobId);
  if (j.status === JobStatus.Open) {
    try {
      await reclaimJob(clients, jobId);
      await withdrawCredits(clients, 'jobMarket');
      return { reclaimed: true };
    } catch (e) {
      const now = await getJob(clients, jobId);
      if (now.status === JobStatus.Open) throw e;
      if (now.status === JobStatus.Reclaimed) {
        // Reclaimed, but the withdraw failed: the escrow is still a credit. Tried once more; a
        // failure throws, and the caller prints `firn job reclaim`, which withdraws it.
        const me = clients.wallet!.account!.address;
        if ((await getWithdrawable(clients, 'jobMarket', me)) > 0n)
          await withdrawCredits(clients, 'jobMarket');
        return { reclaimed: true };
      }
      return { reclaimed: false, status: JobStatus[now.status] ?? String(now.status) };
    }
  }
  return { reclaimed: false, status: JobStatus[j.status] ?? String(j.status) };
}

/** A guard over the window between posting a job and writing its result (see guardJobInFlight). */
export interface JobInterruptGuard {
  /**
   * A postJob transaction was sent (called from onPostSent, before its receipt): from now a signal
   * looks for the job it posted. A resend or a repost replaces it.
   */
  sent(tx: PostJobSent): void;
  /** The job now in flight (called from onPosted; a repost on another node replaces it). */
  posted(jobId: Hex): void;
  /** The window is over (the result is about to be written, or the command failed): handlers removed. */
  release(): void;
}

/** Longest wait on a signal for a sent postJob to show on chain, ms (about a block on Ethereum). */
export const POST_SEEN_WAIT_MS = 15_000;
/** Longest a signal's chain work (finding the job, reclaiming it) holds the exit, ms. */
export const INTERRUPT_WORK_MS = 25_000;

/**
 * The job a sent postJob transaction posted, or undefined when it is not seen mined within
 * `waitMs`: its receipt's JobPosted event, or (an RPC slow to serve receipts) a JobPosted event of
 * the requester's since `tx.fromBlock` whose transaction hash is `tx.hash` (decision 1665). Chain
 * errors are retried until the wait ends.
 */
export async function postedJobOf(
  c: { rpcUrl: string; deployment: FirnDeployment },
  txs: readonly PostJobSent[],
  requester: Hex,
  waitMs: number,
): Promise<Hex | undefined> {
  const clients = createFirnClients(c.rpcUrl, undefined, c.deployment, { pollingIntervalMs: 100 });
  const hashes = new Set(txs.map((t) => t.hash.toLowerCase()));
  // Every send of one post (a resend, a re-price) carries the block read before the first one.
  const fromBlock = txs[0]!.fromBlock;
  const until = performance.now() + waitMs;
  for (;;) {
    for (const t of txs) {
      const receipt = await clients.public.getTransactionReceipt({ hash: t.hash }).catch(() => undefined);
      if (receipt) {
        const [ev] = parseEventLogs({ abi: firnJobMarketAbi, eventName: 'JobPosted', logs: receipt.logs });
        // Mined without the event: it reverted, nothing was posted or paid.
        return ev?.args.jobId;
      }
    }
    const logs = await clients.public
      .getContractEvents({
        address: c.deployment.jobMarket,
        abi: firnJobMarketAbi,
        eventName: 'JobPosted',
        args: { requester },
        fromBlock,
      })
      .catch(() => []);
    const mine = logs.find((l) => l.transactionHash !== null && hashes.has(l.transactionHash.toLowerCase()));
    if (mine?.args.jobId) return mine.args.jobId;
    if (performance.now() >= until) return undefined;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Install SIGINT/SIGTERM/SIGHUP handlers for a job in flight (decisions 1630, 1665). Before the
 * first `sent` or `posted` a signal ends the process at once (exit 128 + signal number), as with
 * no handler. After `sent` (the postJob transaction is out, its receipt not in yet): the
 * transaction hash and the expected job id are printed, then the job it posted is looked for
 * (postedJobOf, up to POST_SEEN_WAIT_MS) and handled as after `posted`; not seen, the `firn job
 * list` and `firn job reclaim` commands are printed. After `posted`: if the job is still Open on
 * chain it is reclaimed (escrow back) before exiting; otherwise the exact command that fetches and
 * opens the result later (`resultCommand(jobId)`) is printed on `stderr`. The chain work is bounded
 * by INTERRUPT_WORK_MS (a hung RPC, a receipt that never comes): then the commands are printed.
 * The process exits with 128 + the signal's number (130 for Ctrl-C). A second signal exits at
 * once. `exit` is injectable for tests (default process.exit).
 */
export function guardJobInFlight(o: {
  chain: { rpcUrl: string; deployment: FirnDeployment; requesterKey: Hex };
  /** The full `firn job result …` command that opens this job's result later. */
  resultCommand: (jobId: Hex) => string;
  /** The full `firn job reclaim …` command, printed when the reclaim on interrupt fails. */
  reclaimCommand: (jobId: Hex) => string;
  /** The full `firn job list …` command (the requester's jobs), printed when a sent post is not seen. */
  listCommand?: (requester: Hex) => string;
  stderr: { write(s: string): unknown };
  exit?: (code: number) => void;
  /** Bounds, ms (tests shorten them). */
  postSeenWaitMs?: number;
  workMs?: number;
}): JobInterruptGuard {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let jobId: Hex | undefined;
  // The postJob transactions of the current attempt (a resend or re-price adds one).
  let sentTxs: PostJobSent[] = [];
  let interrupted = false;
  const fallback = (id: Hex) =>
    `once it is proved fetch its result with:\n  ${o.resultCommand(id)}\nor, while it is open or lapsed, refund it with:\n  ${o.reclaimCommand(id)}\n`;
  const settle = async (id: Hex): Promise<void> => {
    o.stderr.write(`\ninterrupted: job ${id} is in flight; checking it on chain (again to exit now)\n`);
    const r = await reclaimIfOpen(o.chain, id);
    if (r.reclaimed) o.stderr.write(`job ${id} was not claimed yet: reclaimed, escrow refunded\n`);
    else if (r.status === 'Failed' || r.status === 'Slashed')
      o.stderr.write(
        `job ${id} is ${r.status}: it has no result; refund it with:\n  ${o.reclaimCommand(id)}\n`,
      );
    else if (r.status === 'Reclaimed') o.stderr.write(`job ${id} was already reclaimed\n`);
    else
      o.stderr.write(
        `job ${id} is ${r.status} on its node; fetch and open its result later with:\n  ${o.resultCommand(id)}\n`,
      );
  };
  const requester = privateKeyToAccount(o.chain.requesterKey).address;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = interruptExitCode(signal);
    if (interrupted || (jobId === undefined && sentTxs.length === 0)) {
      release();
      exit(code);
      return;
    }
    interrupted = true;
    let current: Hex | undefined = jobId;
    const txs = sentTxs;
    const work = async (): Promise<void> => {
      if (current === undefined) {
        const last = txs[txs.length - 1]!;
        // Named first: whatever follows (a chain that never answers), the user has the hash and id.
        o.stderr.write(
          `\ninterrupted while posting: postJob transaction ${last.hash} is sent (job ${last.expectedJobId}, unless another job was posted just before); waiting for it on chain (again to exit now)\n`,
        );
        current = await postedJobOf(o.chain, txs, requester, o.postSeenWaitMs ?? POST_SEEN_WAIT_MS);
        if (current === undefined) {
          o.stderr.write(
            `postJob transaction ${last.hash} was not seen mined yet; once it is, find the job it posted with:\n  ${o.listCommand?.(requester) ?? `firn job list --requester ${requester}`}\nand refund it while it is open with:\n  ${o.reclaimCommand(last.expectedJobId)}\n`,
          );
          return;
        }
      }
      await settle(current);
    };
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), o.workMs ?? INTERRUPT_WORK_MS);
    });
    void Promise.race([work(), bound])
      .then((w) => {
        if (w === 'timeout') {
          const id = current ?? txs[txs.length - 1]?.expectedJobId;
          o.stderr.write(`job ${id}: the chain did not answer in time; ${fallback(id!)}`);
        }
      })
      .catch(() => {
        // The chain could not be reached or refused: both ways forward, nothing lost.
        const id = current ?? txs[txs.length - 1]!.expectedJobId;
        o.stderr.write(`job ${id}: could not check it on chain; ${fallback(id)}`);
      })
      .finally(() => {
        clearTimeout(timer);
        release();
        exit(code);
      });
  };
  const release = () => {
    for (const s of INTERRUPT_SIGNALS) process.off(s, onSignal);
  };
  for (const s of INTERRUPT_SIGNALS) process.on(s, onSignal);
  return {
    sent(tx: PostJobSent) {
      // A repost starts a new attempt (its job id differs); a resend of the same post adds a hash.
      if (jobId !== undefined || sentTxs[0]?.expectedJobId !== tx.expectedJobId) sentTxs = [];
      jobId = undefined;
      sentTxs.push(tx);
    },
    posted(id: Hex) {
      jobId = id;
      sentTxs = [];
    },
    release() {
      // After an interrupt the handlers stay until it ends the process (a second signal exits now).
      if (!interrupted) release();
    },
  };
}

/** Quote a command-line argument for a POSIX shell when it needs it. */
export function shellArg(s: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `firn job result` command line that fetches and opens `jobId`'s result later: the chain
 * flags the interrupted command was given, its `--key-file` (the result key is derived from it) or
 * `--kem-key`, and a new `--out` directory beside its output (`<out>.result`).
 */
export function jobResultCommand(
  jobId: Hex,
  o: {
    devnet?: string;
    deployment?: string;
    rpc?: string;
    market?: string;
    keyFile?: string;
    kemKey?: string;
    out: string;
  },
): string {
  const a = ['firn', 'job', 'result', jobId];
  for (const [flag, v] of [
    ['--devnet', o.devnet],
    ['--deployment', o.deployment],
    ['--rpc', o.rpc],
    ['--market', o.market],
    ['--key-file', o.keyFile],
    ['--kem-key', o.kemKey],
  ] as const)
    if (v !== undefined) a.push(flag, shellArg(v));
  a.push('--out', shellArg(`${o.out}.result`));
  return a.join(' ');
}

/** The `firn job reclaim` command line for `jobId` with the same chain flags and key. */
export function jobReclaimCommand(
  jobId: Hex,
  o: { devnet?: string; deployment?: string; rpc?: string; market?: string; keyFile?: string },
): string {
  const a = ['firn', 'job', 'reclaim', jobId];
  for (const [flag, v] of [
    ['--devnet', o.devnet],
    ['--deployment', o.deployment],
    ['--rpc', o.rpc],
    ['--market', o.market],
    ['--key-file', o.keyFile],
  ] as const)
    if (v !== undefined) a.push(flag, shellArg(v));
  return a.join(' ');
}

/** The `firn job list` command line of the requester's jobs, with the same chain flags. */
export function jobListCommand(
  requester: Hex,
  o: { devnet?: string; deployment?: string; rpc?: string; market?: string },
): string {
  const a = ['firn', 'job', 'list', '--requester', requester];
  for (const [flag, v] of [
    ['--devnet', o.devnet],
    ['--deployment', o.deployment],
    ['--rpc', o.rpc],
    ['--market', o.market],
  ] as const)
    if (v !== undefined) a.push(flag, shellArg(v));
  return a.join(' ');
}

/** The chain and key flags of a command's options, as given (for the commands printed on interrupt). */
export function chainFlags(o: {
  devnet?: string | undefined;
  deployment?: string | undefined;
  rpc?: string | undefined;
  market?: string | undefined;
  keyFile?: string | undefined;
}): { devnet?: string; deployment?: string; rpc?: string; market?: string; keyFile?: string } {
  return {
    ...(o.devnet !== undefined ? { devnet: o.devnet } : {}),
    ...(o.deployment !== undefined ? { deployment: o.deployment } : {}),
    // Printed on the terminal: the RPC URL without its key (decision 1686); the user puts it back.
    ...(o.rpc !== undefined ? { rpc: redactRpcUrl(o.rpc) } : {}),
    ...(o.market !== undefined ? { market: o.market } : {}),
    ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
  };
}
