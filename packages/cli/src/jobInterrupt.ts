import { constants } from 'node:os';
import {
  createFirnClients,
  type FirnDeployment,
  getJob,
  getWithdrawable,
  JobStatus,
  reclaimJob,
  withdrawCredits,
} from '@firn/chain';
import type { Hex } from '@firn/core';

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
  /** The job now in flight (called from onPosted; a repost on another node replaces it). */
  posted(jobId: Hex): void;
  /** The window is over (the result is about to be written, or the command failed): handlers removed. */
  release(): void;
}

/**
 * Install SIGINT/SIGTERM/SIGHUP handlers for a job in flight (decision 1630). Before the first
 * `posted` a signal ends the process at once (exit 128 + signal number), as with no handler. After
 * it: if the job is still Open on chain it is reclaimed (escrow back) before exiting; otherwise the
 * exact command that fetches and opens the result later (`resultCommand(jobId)`) is printed on
 * `stderr`, and the process exits with 128 + the signal's number (130 for Ctrl-C). A second signal
 * exits at once. A failed reclaim prints `firn job reclaim`/`firn job result` commands instead.
 * `exit` is injectable for tests (default process.exit).
 */
export function guardJobInFlight(o: {
  chain: { rpcUrl: string; deployment: FirnDeployment; requesterKey: Hex };
  /** The full `firn job result …` command that opens this job's result later. */
  resultCommand: (jobId: Hex) => string;
  /** The full `firn job reclaim …` command, printed when the reclaim on interrupt fails. */
  reclaimCommand: (jobId: Hex) => string;
  stderr: { write(s: string): unknown };
  exit?: (code: number) => void;
}): JobInterruptGuard {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let jobId: Hex | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const code = interruptExitCode(signal);
    if (interrupted || jobId === undefined) {
      release();
      exit(code);
      return;
    }
    interrupted = true;
    const id = jobId;
    o.stderr.write(`\ninterrupted: job ${id} is in flight; checking it on chain (again to exit now)\n`);
    void reclaimIfOpen(o.chain, id)
      .then((r) => {
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
      })
      .catch(() => {
        // The chain could not be reached or refused: both ways forward, nothing lost.
        o.stderr.write(
          `job ${id}: could not check it on chain; once it is proved fetch its result with:\n  ${o.resultCommand(id)}\nor, while it is open or lapsed, refund it with:\n  ${o.reclaimCommand(id)}\n`,
        );
      })
      .finally(() => {
        release();
        exit(code);
      });
  };
  const release = () => {
    for (const s of INTERRUPT_SIGNALS) process.off(s, onSignal);
  };
  for (const s of INTERRUPT_SIGNALS) process.on(s, onSignal);
  return {
    posted(id: Hex) {
      jobId = id;
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
    ...(o.rpc !== undefined ? { rpc: o.rpc } : {}),
    ...(o.market !== undefined ? { market: o.market } : {}),
    ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
  };
}
