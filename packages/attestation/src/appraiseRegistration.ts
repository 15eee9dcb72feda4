import { randomBytes } from 'node:crypto';
import {
  bytesToHex,
  computeEnclaveId,
  type EndpointDestinationOptions,
  type EvidenceBundle,
  FirnError,
  type Hex,
  MAX_EVIDENCE_BUNDLE_BYTES,
  readBodyCapped,
  refusalCodeOf,
  type TeeTypeName,
  TooLargeError,
} from '@firn/core';
import { fetchFromNode } from '@firn/core/fetchFromNode';
import { type Appraisal, appraiseEvidence } from './appraiseEvidence.ts';
import type { AttestationPolicy } from './policy/policy.ts';
import type { Refusal } from './types.ts';

/** What the registry says about a registration (the claim under test). */
export interface RegistrationClaim {
  enclaveId: Hex;
  teeType: TeeTypeName;
  measurement: Hex;
  enclaveAddress: Hex;
  kemPublicKey: Hex;
  endpoint: string;
  /** The operator the registry records (the account that registered the Enclave ID). */
  operator: Hex;
}

/**
 * The refusal of evidence that does not speak for the registered operator (decision 1830): the
 * bundle names no operator, or another than `registered`. Only meaningful for a bundle that
 * appraiseEvidence accepted (its report data then binds the operator it names). Undefined when
 * they agree; otherwise E_EVIDENCE_OPERATOR naming both addresses.
 */
export function evidenceOperatorRefusal(
  bundle: Pick<EvidenceBundle, 'operator'>,
  registered: Hex,
): Refusal | undefined {
  if (bundle.operator !== undefined && bundle.operator.toLowerCase() === registered.toLowerCase())
    return undefined;
  return {
    code: 'E_EVIDENCE_OPERATOR',
    message:
      bundle.operator === undefined
        ? `the evidence binds no operator; the registration's operator is ${registered.toLowerCase()}`
        : `the evidence binds operator ${bundle.operator}, not the registration's operator ${registered.toLowerCase()}`,
  };
}

/**
 * The outcome of re-checking a registration. `approve: false` with `unavailable` set means no
 * evidence was obtained (the endpoint was unreachable, timed out, busy or rate limited, or
 * answered no evidence): that is no fact about the enclave, and a verifier must not refuse on it
 * (decision 1742); `retryAfterMs` is the wait the node asked for (Retry-After), when it gave one.
 */
export type RegistrationVerdict =
  | { approve: true; appraisal: Appraisal }
  | {
      approve: false;
      reasonCode: number;
      reasons: Refusal[];
      unavailable?: { retryAfterMs?: number };
    };

/** Longest Retry-After a node's answer is honoured for, seconds (a larger one is clamped). */
export const MAX_EVIDENCE_RETRY_AFTER_SECONDS = 600;

/**
 * The wait an HTTP answer asks for (RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date),
 * in ms, clamped to 0..MAX_EVIDENCE_RETRY_AFTER_SECONDS; undefined when absent or unreadable.
 * `nowMs` is the clock an HTTP-date is measured from.
 */
export function retryAfterMs(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  let seconds: number;
  if (/^\d{1,10}$/.test(v)) seconds = Number(v);
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at) || v.length > 64) return undefined;
    seconds = Math.max(0, (at - nowMs) / 1000);
  }
  return Math.round(Math.min(seconds, MAX_EVIDENCE_RETRY_AFTER_SECONDS) * 1000);
}

export interface AppraiseRegistrationOptions {
  now: number;
  policy: AttestationPolicy;
  roots?: Parameters<typeof appraiseEvidence>[1]['roots'];
  gpuRoots?: Parameters<typeof appraiseEvidence>[1]['gpuRoots'];
  /** Where DCAP collateral comes from when the node's bundle lacks it or it has expired. */
  collateralSource?: Parameters<typeof appraiseEvidence>[1]['collateralSource'];
  /** Where SEV-SNP collateral comes from (createKdsClient); authoritative over attached pieces. */
  sevSnpCollateral?: Parameters<typeof appraiseEvidence>[1]['sevSnpCollateral'];
  /** Where GPU RIMs come from (NVIDIA's RIM service or an offline folder). */
  gpuRimSource?: Parameters<typeof appraiseEvidence>[1]['gpuRimSource'];
  /** OCSP client for GPU certificate revocation. */
  gpuOcsp?: Parameters<typeof appraiseEvidence>[1]['gpuOcsp'];
  /** Fetch evidence for a nonce from the node (defaults to POST {endpoint}/v1/attestation). */
  fetchEvidence?: (endpoint: string, nonce: Uint8Array) => Promise<unknown>;
  /** Time for the attestation request, all its busy retries together (waits apart), ms; default 10 s. */
  timeoutMs?: number;
  /**
   * Times to ask again, with a fresh nonce, when the node refused the attestation request as busy
   * (429 or 503: its rate limit, a full queue): after its Retry-After, at most
   * MAX_BUSY_RETRY_WAIT_MS (5 s), or 250 ms doubling when it names none. All the tries share one
   * `timeoutMs` (the waits apart), so they hold a caller at most `timeoutMs` + busyRetries x 5 s. Default 0 (a verifier
   * schedules its own retries from `unavailable.retryAfterMs`); a requester about to send a job
   * asks a few times (attestNode: 3) rather than fail the job on a momentary refusal.
   */
  busyRetries?: number;
  /** How a wait between busy retries is spent (tests); default a timer. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Let the endpoint be a loopback, private or other forbidden address (default false; devnets
   * and tests). Otherwise such an endpoint gets no request (docs/decisions/1832): written in the
   * URL itself, it is refused (E_ENDPOINT_FORBIDDEN, the same on every machine); a name that
   * resolves to one is no evidence (`unavailable`), as a name that does not resolve is.
   */
  allowPrivateEndpoints?: boolean;
}

/** The time an attestation request (all its busy retries together) may take, ms, by default. */
export const DEFAULT_EVIDENCE_TIMEOUT_MS = 10_000;
/** The longest wait before asking a busy node again, ms (a longer Retry-After is cut to it). */
export const MAX_BUSY_RETRY_WAIT_MS = 5_000;
/** The wait before the first busy retry when the node names none, ms (doubling after). */
const FIRST_BUSY_RETRY_WAIT_MS = 250;

/**
 * POST {endpoint}/v1/attestation with a size-capped, time-limited read of the answer, through
 * fetchFromNode: redirects are refused, not followed, and a forbidden destination gets no request
 * unless `opts.allowPrivateEndpoints`; the answer is asked for uncompressed and refused when it
 * names a content-encoding. Errors: E_INVALID_INPUT (not http(s)),
 * E_ENDPOINT_FORBIDDEN (EndpointForbiddenError), E_UNAVAILABLE (unreachable, a redirect or a
 * non-2xx answer; details.status, and details.retryAfterMs when the answer carried Retry-After),
 * E_TIMEOUT, E_TOO_LARGE (over the bundle cap).
 */
export async function fetchEvidenceOverHttp(
  endpoint: string,
  nonce: Uint8Array,
  timeoutMs = DEFAULT_EVIDENCE_TIMEOUT_MS,
  opts: EndpointDestinationOptions = {},
): Promise<unknown> {
  const url = new URL('/v1/attestation', endpoint);
  const res = await fetchFromNode(
    url,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: bytesToHex(nonce) }),
    },
    // Identity only: an answer naming any content-encoding is refused unread, so no chain of
    // encodings is ever decoded here (decision 1834).
    { timeoutMs, what: 'the attestation request', identity: true, ...opts },
  );
  const body = await readBodyCapped(res, MAX_EVIDENCE_BUNDLE_BYTES, 'evidence bundle');
  if (!res.ok) {
    const wait = retryAfterMs(res.headers.get('retry-after'), Date.now());
    throw new FirnError('E_UNAVAILABLE', `node answered ${res.status}`, {
      details: wait === undefined ? { status: res.status } : { status: res.status, retryAfterMs: wait },
    });
  }
  return Buffer.from(body).toString('utf8');
}

/**
 * Re-check a registration as a verifier: fetch evidence with our own fresh nonce, verify and
 * evaluate it, and compare the attested identity and operator with the on-chain claim. It proves
 * the node at the endpoint runs the registered enclave, started for the registered operator, for
 * this nonce (so another operator relaying it cannot register it: decision 1830); it does not
 * prove the endpoint stays honest afterwards (later proofs are re-checked separately). Refusals:
 * the appraisal's, then E_IDENTITY_MISMATCH (TEE type, measurement, keys, Enclave ID) and
 * E_EVIDENCE_OPERATOR; `reasonCode` is the first reason's.
 */
export async function appraiseRegistration(
  claim: RegistrationClaim,
  opts: AppraiseRegistrationOptions,
): Promise<RegistrationVerdict> {
  let nonce = new Uint8Array(randomBytes(32));
  let raw: unknown;
  // One request's time for all the tries together, the waits between them apart: a node that
  // answers busy just before each try would time out cannot hold a requester a multiple of it.
  const budgetMs = opts.timeoutMs ?? DEFAULT_EVIDENCE_TIMEOUT_MS;
  const started = performance.now();
  let waitedMs = 0;
  const leftMs = () => Math.ceil(budgetMs - (performance.now() - started - waitedMs));
  const fetchEvidence =
    opts.fetchEvidence ??
    ((e, n) =>
      fetchEvidenceOverHttp(e, n, Math.max(1, leftMs()), {
        allowPrivateEndpoints: opts.allowPrivateEndpoints === true,
      }));
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        raw = await fetchEvidence(claim.endpoint, nonce);
        break;
      } catch (e) {
        const details = e instanceof FirnError ? e.details : undefined;
        const busy = details?.status === 429 || details?.status === 503;
        if (!busy || attempt >= (opts.busyRetries ?? 0) || leftMs() <= 0) throw e;
        const named = details?.retryAfterMs;
        const t0 = performance.now();
        await sleep(
          Math.min(
            typeof named === 'number' ? named : FIRST_BUSY_RETRY_WAIT_MS * 2 ** attempt,
            MAX_BUSY_RETRY_WAIT_MS,
          ),
        );
        waitedMs += performance.now() - t0;
        nonce = new Uint8Array(randomBytes(32));
      }
    }
  } catch (e) {
    // Bytes that cannot be evidence are a fact about the node's answer: refused.
    if (e instanceof TooLargeError)
      return {
        approve: false,
        reasonCode: refusalCodeOf('E_TOO_LARGE'),
        reasons: [{ code: 'E_TOO_LARGE', message: e.message }],
      };
    // An endpoint whose URL names a forbidden address is a fact every verifier reads alike from the
    // chain, and no connection was made: refused. One whose name resolved to such an address says
    // what this machine's resolver answers (an internal name, say): no evidence, like a name that
    // does not resolve, so the vote tells nothing about this verifier's network.
    if (e instanceof FirnError && e.code === 'E_ENDPOINT_FORBIDDEN' && e.details?.by === 'url')
      return {
        approve: false,
        reasonCode: refusalCodeOf('E_ENDPOINT_FORBIDDEN'),
        reasons: [{ code: 'E_ENDPOINT_FORBIDDEN', message: e.message }],
      };
    // No evidence at all (down, timed out, busy, rate limited, an error status): no verdict.
    const wait = e instanceof FirnError ? e.details?.retryAfterMs : undefined;
    return {
      approve: false,
      reasonCode: refusalCodeOf('E_UNREACHABLE'),
      reasons: [{ code: 'E_UNREACHABLE', message: (e as Error).message }],
      unavailable: typeof wait === 'number' ? { retryAfterMs: wait } : {},
    };
  }
  const appraisal = await appraiseEvidence(raw, {
    now: opts.now,
    policy: opts.policy,
    expectedNonce: nonce,
    ...(opts.roots === undefined ? {} : { roots: opts.roots }),
    ...(opts.gpuRoots === undefined ? {} : { gpuRoots: opts.gpuRoots }),
    ...(opts.collateralSource === undefined ? {} : { collateralSource: opts.collateralSource }),
    ...(opts.sevSnpCollateral === undefined ? {} : { sevSnpCollateral: opts.sevSnpCollateral }),
    ...(opts.gpuRimSource === undefined ? {} : { gpuRimSource: opts.gpuRimSource }),
    ...(opts.gpuOcsp === undefined ? {} : { gpuOcsp: opts.gpuOcsp }),
  });
  if (!appraisal.ok)
    return {
      approve: false,
      reasonCode: refusalCodeOf(appraisal.reasons[0]!.code),
      reasons: appraisal.reasons,
    };
  const { facts, bundle } = appraisal;
  const mismatches: Refusal[] = [];
  const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  if (facts.teeType !== claim.teeType)
    mismatches.push({ code: 'E_IDENTITY_MISMATCH', message: 'TEE type differs from the registration' });
  if (!eq(bytesToHex(facts.measurement), claim.measurement))
    mismatches.push({ code: 'E_IDENTITY_MISMATCH', message: 'measurement differs from the registration' });
  if (!eq(bundle.enclaveAddress, claim.enclaveAddress))
    mismatches.push({
      code: 'E_IDENTITY_MISMATCH',
      message: 'enclave address differs from the registration',
    });
  if (!eq(bundle.kemPublicKey, claim.kemPublicKey))
    mismatches.push({ code: 'E_IDENTITY_MISMATCH', message: 'KEM key differs from the registration' });
  const id = bytesToHex(computeEnclaveId(facts.teeType, facts.platformId, facts.measurement));
  if (!eq(id, claim.enclaveId))
    mismatches.push({
      code: 'E_IDENTITY_MISMATCH',
      message: 'Enclave ID does not derive from the attested platform and measurement',
    });
  const wrongOperator = evidenceOperatorRefusal(bundle, claim.operator);
  if (wrongOperator !== undefined) mismatches.push(wrongOperator);
  if (mismatches.length > 0)
    return { approve: false, reasonCode: refusalCodeOf(mismatches[0]!.code), reasons: mismatches };
  return { approve: true, appraisal };
}
