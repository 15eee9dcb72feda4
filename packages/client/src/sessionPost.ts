import { FirnError, type Hex } from '@firn/core';
import type { NodeApi } from './nodeApi.ts';

/** Refusals (429 / 503 the node answered) a session request is re-sent after, at most. */
export const MAX_SESSION_REFUSAL_RETRIES = 3;
/** The longest wait before re-sending a refused session request, ms (a longer Retry-After is cut to it). */
export const MAX_SESSION_RETRY_WAIT_MS = 5_000;
/** The wait before the first re-send when the refusal names none (doubling after), ms. */
const FIRST_RETRY_WAIT_MS = 200;

export interface SessionPostOptions {
  /** The node's transport token of the session (x-firn-session-token). */
  accessToken?: string;
  /** Bound of each POST, body included, ms (openInferenceSession's `requestTimeoutMs`). */
  timeoutMs: number;
  /** Default MAX_SESSION_REFUSAL_RETRIES. */
  maxRefusalRetries?: number;
  /** Default MAX_SESSION_RETRY_WAIT_MS. */
  maxRetryWaitMs?: number;
  /** How a wait is spent (tests); default a timer. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Send one sealed session request by POST /v1/sessions/{id}/requests and return the sealed answer
 * (docs/decisions/1530-session-post-retries.md). Only ever the SAME sealed bytes are re-sent: the
 * message's sequence number is authenticated, so the enclave takes it at most once and a copy of
 * one it already took is refused as a replay (E_CHANNEL_SEQUENCE) by the node or the enclave.
 *
 * - A refusal the node answered with 429 or 503 (its rate limit, a full session, the enclave busy)
 *   is re-sent after Retry-After (at most `maxRetryWaitMs`; 200 ms doubling when none is given),
 *   up to `maxRefusalRetries` times; then the last refusal is raised.
 * - A connection that dropped with no answer (E_UNAVAILABLE without an HTTP status) is re-sent
 *   once: the enclave either answers it, or it had taken it already and the copy is refused; then
 *   the answer is lost and E_UNAVAILABLE (details.answerLost) says the session must be reopened.
 * - A POST with no whole answer within `timeoutMs` is E_TIMEOUT naming the option; it is not re-sent.
 * Every other refusal (the enclave's typed errors, 4xx) is raised as it is.
 */
export async function postSessionRequest(
  api: Pick<NodeApi, 'sessionRequest' | 'endpoint'>,
  sessionId: Hex,
  request: Uint8Array,
  o: SessionPostOptions,
): Promise<Uint8Array> {
  const maxRetries = o.maxRefusalRetries ?? MAX_SESSION_REFUSAL_RETRIES;
  const maxWait = o.maxRetryWaitMs ?? MAX_SESSION_RETRY_WAIT_MS;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let refusals = 0;
  let resent = false;
  // One deadline for the request, re-sends and waits included (decision 1530: from the moment it
  // is sent to the moment its whole answer is in): a host that refuses each try just before its
  // bound cannot hold the caller a multiple of `timeoutMs`.
  const deadline = performance.now() + o.timeoutMs;
  const left = () => Math.ceil(deadline - performance.now());
  for (;;) {
    try {
      if (left() <= 0) throw new FirnError('E_TIMEOUT', 'no time left for a re-send');
      return await api.sessionRequest(sessionId, request, undefined, o.accessToken, left());
    } catch (e) {
      if (!(e instanceof FirnError)) throw e;
      const status = e.details?.httpStatus;
      if ((status === 429 || status === 503) && refusals < maxRetries) {
        const after = e.details?.retryAfterSeconds;
        const wait =
          typeof after === 'number' ? after * 1000 : FIRST_RETRY_WAIT_MS * 2 ** Math.min(refusals, 10);
        refusals++;
        await sleep(Math.max(0, Math.min(wait, maxWait, left())));
        continue;
      }
      if (status === undefined && e.code === 'E_UNAVAILABLE' && !resent) {
        resent = true;
        continue;
      }
      if (e.code === 'E_CHANNEL_SEQUENCE' && (resent || refusals > 0))
        throw new FirnError(
          'E_UNAVAILABLE',
          `the connection to node ${api.endpoint} failed after a session request was sent, and the enclave had already taken it: its answer is lost and the session is closed; open a new session`,
          { cause: e, details: { answerLost: true } },
        );
      if (e.code === 'E_TIMEOUT')
        throw new FirnError(
          'E_TIMEOUT',
          `node ${api.endpoint} gave no answer to a session request within ${o.timeoutMs} ms (openInferenceSession option requestTimeoutMs); the session is closed`,
          { cause: e, details: { timeoutMs: o.timeoutMs } },
        );
      throw e;
    }
  }
}
