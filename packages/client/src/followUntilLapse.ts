import { getJob, JobStatus } from '@firn/chain';
import { FirnError, type Hex } from '@firn/core';
import type { MarketSession } from './marketJob.ts';

/** The end event of a job's event stream (GET /v1/jobs/{id}/events), or the chain's word for it. */
export type StreamEnd = { status: string; error?: { code: FirnError['code']; message: string } };

/**
 * Chain seconds past a claim's lapse (judged on the SDK's ChainClock) before the SDK stops waiting
 * on the node and acts on the chain (nudge, reclaim): the clock may run a little ahead of the
 * chain's own block times (decision 1460), never by much.
 */
export const LAPSE_MARGIN_S = 2n;
/** Own time to wait for a nudge's receipt, ms (an RPC that never shows it mined cannot hold us). */
export const NUDGE_RECEIPT_MS = 10_000;
/** Own time a stream may stay open after the job settled on chain (its end event is due), ms. */
const SETTLED_GRACE_MS = 10_000;
/** Chain reads in a row that may fail while judging a stream's lapse before it is ended anyway. */
const MAX_WATCH_READ_FAILURES = 5;

/**
 * Follow a job's event stream (`follow`, which must honour the signal it is given) no longer than
 * the job's claim can hold it: once the SDK's ChainClock (decision 1460) is past the claim's lapse
 * (`min(claimedAt + claimTimeout, deadline)`) plus LAPSE_MARGIN_S, the follow is aborted with
 * E_TIMEOUT naming the job, and the caller goes back to the chain (waitOutLostNode: nudge, reclaim
 * or give up). Nothing the node sends extends this bound: a host that keeps the stream alive with
 * keep-alives (or progress) for ever, its enclave hung, holds the requester only until the lapse.
 * A job still Open is bounded by its deadline; one that settled on chain (proved, failed) by
 * SETTLED_GRACE_MS for its end event. No chain read is made before `earliestLapseAt` (chain
 * seconds; the lapse cannot come sooner), so a job that ends before then costs no extra read.
 * Decision 1475.
 */
export async function followUntilLapse(
  m: Pick<MarketSession, 'clients' | 'chainClock' | 'node'>,
  jobId: Hex,
  follow: (signal: AbortSignal) => Promise<StreamEnd>,
  earliestLapseAt: bigint,
  latestLapseAt?: bigint,
): Promise<StreamEnd> {
  // The latest the claim can lapse by what the requester posted (its deadline): an RPC naming a
  // later claim timeout or deadline does not move the bound.
  const cap = (t: bigint) => (latestLapseAt === undefined ? t : minBig(t, latestLapseAt));
  const ctl = new AbortController();
  let target = earliestLapseAt + LAPSE_MARGIN_S; // chain seconds: the next time to look
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  let settledSince: number | undefined;
  let failures = 0;
  const stop = (why: string) =>
    ctl.abort(
      new FirnError(
        'E_TIMEOUT',
        `node ${m.node.endpoint} did not end the event stream of job ${jobId}: ${why}`,
        {
          details: { jobId, endpoint: m.node.endpoint, boundedBy: 'claim-lapse' },
        },
      ),
    );
  const arm = () => {
    if (done) return;
    const now = m.chainClock.estimate() ?? 0;
    // At most an hour per timer (Node fires a delay over 2^31-1 ms at once); re-armed until due.
    timer = setTimeout(check, Math.min(3_600_000, Math.max(500, (Number(target) - now) * 1000)));
  };
  const check = async () => {
    if (done) return;
    const now = BigInt(m.chainClock.estimate() ?? 0);
    if (now < target) return arm();
    try {
      const job = await getJob(m.clients, jobId);
      failures = 0;
      if (job.status === JobStatus.Claimed) {
        const lapseAt = cap(minBig(job.claimedAt + job.claimTimeout, job.deadline));
        if (now > lapseAt + LAPSE_MARGIN_S)
          return stop(`its claim lapsed at chain time ${lapseAt} (now ${now}); the chain decides from here`);
        target = lapseAt + LAPSE_MARGIN_S + 1n;
      } else if (job.status === JobStatus.Open) {
        const deadline = cap(job.deadline);
        if (now > deadline + LAPSE_MARGIN_S)
          return stop(`nobody claimed it before its deadline at chain time ${deadline}`);
        target = minBig(deadline, now + job.claimTimeout) + LAPSE_MARGIN_S + 1n;
      } else {
        // Settled on chain (proved, failed, reclaimed...): the end event is due; wait a little for it.
        settledSince ??= performance.now();
        if (performance.now() - settledSince >= SETTLED_GRACE_MS)
          return stop(`the job is ${JobStatus[job.status]} on chain`);
        target = now + BigInt(Math.ceil(SETTLED_GRACE_MS / 1000));
      }
    } catch {
      // The chain could not be read: look again shortly; a chain that stays unreadable ends it too.
      if (++failures >= MAX_WATCH_READ_FAILURES)
        return stop('the chain could not be read to judge its claim');
      target = now + 2n;
    }
    arm();
  };
  arm();
  try {
    return await follow(ctl.signal);
  } finally {
    done = true;
    clearTimeout(timer);
  }
}

/** The smaller of two bigints (Math.min takes numbers only). */
export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** Whether `e` is the E_TIMEOUT followUntilLapse ended a follow with (not a network timeout). */
export function isLapseBound(e: unknown): e is FirnError {
  return e instanceof FirnError && e.code === 'E_TIMEOUT' && e.details?.['boundedBy'] === 'claim-lapse';
}
