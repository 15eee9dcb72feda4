import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { appEventJson, checkWorkloadResult, MAX_SIGNED_DATA_PER_JOB, type SignedDataRecord } from '@firn/app';
import { signDataRecord } from '@firn/app/signData';
import {
  bytesToHex,
  chargedBytes,
  computeAppWorkloadHash,
  computeInputCommitment,
  computeOutputCommitment,
  computeWorkloadHash,
  concatBytes,
  FirnError,
  type Hex,
  hexBytes,
  isFirnError,
  jobChannelInfo,
  parseOutputBound,
  parsePaddedContentType,
  STORAGE_BLOCK_BYTES,
  type JobRequest,
  parseJobRequest,
  sha256,
  TooLargeError,
  utf8,
  type WorkProofFields,
  toErrorBody,
  type WorkProofJson,
  unpadPlaintext,
  workloadParams,
  workProofToJson,
} from '@firn/core';
import {
  acceptChannel,
  artifactId,
  CHANNEL_MIN_PADDED_BYTES,
  discardArtifactKey,
  hkdfSha256,
  type EnclaveChannel,
  openArtifact,
  openGrantKey,
  parseGrant,
  type PreparedArtifactKey,
  prepareArtifactKey,
  readArtifactHeader,
  sealArtifact,
  signDigest,
  verifyGrant,
} from '@firn/crypto';
import type { EnclaveContext, Handler } from '../enclaveProgram.ts';
import { inProcessRuntime, type MlRuntime } from '../runtime/mlRuntime.ts';
import { ArtifactCache } from './artifactCache.ts';
import {
  attestableFailureReason,
  type JobFailureFields,
  jobFailureDigestBytes,
  signedJobFailureToJson,
} from './jobFailure.ts';
import { jobRecipients } from './recipients.ts';
import { workProofDigestBytes } from './workProofDigest.ts';
import type { Workload, WorkloadInput, WorkloadOutput } from './workload.ts';

/** Largest sealed input the enclave reads from host storage. */
export const MAX_INPUT_ARTIFACT_BYTES = 2 * 1024 * 1024 * 1024 - 1;
export const MAX_OUTPUTS = 16;
/** Largest single output a workload may return (plaintext bytes), else E_TOO_LARGE. */
export const MAX_OUTPUT_BYTES = 512 * 1024 * 1024;
/** Largest total of a job's outputs (plaintext bytes), else E_TOO_LARGE. */
export const MAX_TOTAL_OUTPUT_BYTES = 1024 * 1024 * 1024;
/** Outputs totalling at most this many bytes are sealed concurrently (else one at a time). */
const PARALLEL_SEAL_BYTES = 64 * 1024 * 1024;
/** Outputs totalling at most this many bytes are written to host storage with synchronous calls. */
const SYNC_WRITE_BYTES = 1024 * 1024;
/** Outputs each job kind returned last time: how many data keys to prepare while the next one runs. */
const expectedOutputs = new Map<string, number>();

/**
 * `count` data keys wrapped to `recipients` (prepareArtifactKey), drawn after the current
 * macrotask so the workload's start message leaves first. Never rejects: a failure yields fewer
 * keys (the outputs without one are sealed with a fresh key, as before).
 */
async function prepareOutputKeys(
  recipients: readonly Uint8Array[],
  count: number,
): Promise<PreparedArtifactKey[]> {
  if (count === 0 || recipients.length === 0) return [];
  await new Promise<void>((r) => setImmediate(r));
  const out: PreparedArtifactKey[] = [];
  try {
    for (let i = 0; i < count; i++) out.push(await prepareArtifactKey(recipients));
  } catch {
    // Sealing draws its own keys for the rest.
  }
  return out;
}

/** Longest a workload may run when the host names no earlier deadline, ms (6 h). */
export const MAX_WORKLOAD_MS = 6 * 60 * 60 * 1000;
/** HKDF info tag of the per-job seed of `ctx.random` (docs/decisions/1080, "Randomness"). */
export const APP_RANDOM_TAG = 'firn/app-random-seed/v1';

/** What the host passes to `runJob` (everything here is public or ciphertext). */
export interface RunJobParams {
  jobId: Hex;
  /** HPKE encapsulated key and the sealed job request (base64 channel message). */
  enc: Hex;
  request: string;
  /** Host paths of the sealed input artifacts, by artifact id. */
  inputPaths: Record<string, string>;
  /** The job as posted on chain: the enclave refuses to run anything else. */
  onChain: { workloadHash: Hex; inputCommitment: Hex };
  /**
   * The domain the host will submit the proof under; must equal the one in the request.
   * `dataLedger`: the FirnDataLedger the app's signed-data records are signed for (same chain);
   * without it a workload's `ctx.signData` fails with E_UNSUPPORTED.
   */
  domain: { chainId: number; jobMarket: Hex; dataLedger?: Hex };
  /** Host directory where the enclave writes sealed outputs (ciphertext only). */
  outputDir: string;
  /**
   * The job's deadline (unix seconds, the on-chain one): the workload is stopped there with
   * E_TIMEOUT. Optional; the enclave's cap (MAX_WORKLOAD_MS) applies either way. A host that
   * names a later one gains nothing past the cap; an earlier one only fails its own job.
   */
  deadline?: number;
  /**
   * The output bound the host reserved storage for, bytes: must equal the request's declared
   * `maxOutputBytes` (both absent for a job that declares none), else E_JOB_INVALID before anything
   * runs (decision 1690). The enclave enforces the request's bound, never the host's word alone.
   */
  maxOutputBytes?: number;
}

export interface RunJobOutput {
  role: string;
  artifactId: Hex;
  contentType: string;
  size: number;
  /** Host path of the sealed output, inside outputDir. */
  path: string;
}

export interface RunJobResult {
  proof: WorkProofJson;
  outputs: RunJobOutput[];
  /** Channel response (base64): the job summary sealed to the requester. */
  response: string;
  /** Records the app signed with `ctx.signData`, in call order, for the node to post (public). */
  signedData: SignedDataRecord[];
}

const bigintText = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);
const fail = (code: ConstructorParameters<typeof FirnError>[0], message: string) =>
  new FirnError(code, message);
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function parseRunJobParams(p: Record<string, unknown>): RunJobParams {
  const jobId = bytesToHex(hexBytes(p.jobId, 'jobId', 32));
  if (typeof p.request !== 'string') throw fail('E_JOB_INVALID', 'request must be a base64 channel message');
  const onChain = p.onChain as Record<string, unknown> | undefined;
  const domain = p.domain as Record<string, unknown> | undefined;
  if (!onChain || !domain) throw fail('E_JOB_INVALID', 'onChain and domain are required');
  if (typeof domain.chainId !== 'number') throw fail('E_JOB_INVALID', 'domain.chainId must be a number');
  if (typeof p.outputDir !== 'string' || typeof p.inputPaths !== 'object' || p.inputPaths === null)
    throw fail('E_JOB_INVALID', 'outputDir and inputPaths are required');
  if (p.deadline !== undefined && (typeof p.deadline !== 'number' || !Number.isSafeInteger(p.deadline)))
    throw fail('E_JOB_INVALID', 'deadline must be unix seconds (an integer)');
  return {
    jobId,
    enc: bytesToHex(hexBytes(p.enc, 'enc', 32)),
    request: p.request,
    inputPaths: p.inputPaths as Record<string, string>,
    onChain: {
      workloadHash: bytesToHex(hexBytes(onChain.workloadHash, 'workloadHash', 32)),
      inputCommitment: bytesToHex(hexBytes(onChain.inputCommitment, 'inputCommitment', 32)),
    },
    domain: {
      chainId: domain.chainId,
      jobMarket: bytesToHex(hexBytes(domain.jobMarket, 'jobMarket', 20)),
      ...(domain.dataLedger === undefined
        ? {}
        : { dataLedger: bytesToHex(hexBytes(domain.dataLedger, 'dataLedger', 20)) }),
    },
    outputDir: p.outputDir,
    ...(p.deadline === undefined ? {} : { deadline: p.deadline as number }),
    ...(p.maxOutputBytes === undefined ? {} : { maxOutputBytes: parseRunJobBound(p.maxOutputBytes) }),
  };
}

function parseRunJobBound(v: unknown): number {
  try {
    return parseOutputBound(v, 'maxOutputBytes');
  } catch (e) {
    throw fail('E_JOB_INVALID', (e as Error).message);
  }
}

/**
 * Check that the host reserved storage for the bound the request declares (decision 1690): the
 * request's `maxOutputBytes` equals the host's (both absent for a job that declares none). A host
 * that reserved less, or a requester that signed one bound to the node and sealed another, would
 * otherwise have the job fail at output storage after the claim. Raises E_JOB_INVALID naming both.
 */
export function checkOutputBound(
  req: Pick<JobRequest, 'maxOutputBytes'>,
  p: Pick<RunJobParams, 'maxOutputBytes'>,
): void {
  if (req.maxOutputBytes === p.maxOutputBytes) return;
  const show = (v: number | undefined) => (v === undefined ? 'none' : `${v} bytes`);
  throw fail(
    'E_JOB_INVALID',
    `the request declares an output bound of ${show(req.maxOutputBytes)} but the node reserved storage for ${show(p.maxOutputBytes)}: submit the job with the maxOutputBytes its request declares`,
  );
}

/** Sealed inputs up to this size are read from host storage with one synchronous call. */
const SYNC_READ_BYTES = 1024 * 1024;

async function readInput(path: string, id: Hex): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    // A small file (most inputs) in one synchronous read: a few hundred microseconds less CPU than
    // libuv's open/stat/read/close round trips; larger ones through the pool as before.
    const size = statSync(path).size;
    bytes = new Uint8Array(size <= SYNC_READ_BYTES ? readFileSync(path) : await readFile(path));
  } catch {
    throw fail('E_NOT_FOUND', `input artifact ${id} is not in host storage`);
  }
  if (bytes.length > MAX_INPUT_ARTIFACT_BYTES) throw fail('E_TOO_LARGE', 'input artifact too large');
  // The id pins the ciphertext the requester committed to; storage that hands back other bytes is caught here.
  if (!same(artifactId(bytes), id))
    throw fail('E_ARTIFACT_TAMPERED', `input artifact ${id} does not hash to its id`);
  return bytes;
}

/**
 * Verify the grant of every input of a request without unwrapping any key: owner signature, this
 * enclave's Enclave ID and KEM key, this jobId and workload hash, expiry at `now` (the enclave's
 * floored time); raises the time floor to each grant's signed `issuedAt`. Returns the grants in
 * the order of `req.inputs`. Raises E_GRANT_INVALID / E_GRANT_EXPIRED / E_GRANT_SCOPE.
 */
export function verifyRequestGrants(
  req: Pick<JobRequest, 'inputs' | 'grants'>,
  jobId: Hex,
  ctx: EnclaveContext,
  now: number,
  workloadHash: Hex,
): ReturnType<typeof parseGrant>[] {
  const keys = ctx.keys();
  const enclaveId = bytesToHex(ctx.enclaveId());
  const grants = req.grants.map((g) => parseGrant(g));
  const out: ReturnType<typeof parseGrant>[] = [];
  for (const ref of req.inputs) {
    const grant = grants.find((g) => same(g.artifactId, ref.artifactId));
    if (grant === undefined) throw new FirnError('E_GRANT_INVALID', `no grant for input ${ref.role}`);
    verifyGrant(grant, {
      artifactId: ref.artifactId,
      enclaveId,
      jobId,
      workloadHash,
      now,
      enclaveKemPublicKey: keys.kemPublicKey,
    });
    // The owner signed the chain time it made this grant at: the enclave's clock never goes below it again.
    ctx.time.observe(grant.issuedAt);
    out.push(grant);
  }
  return out;
}

/**
 * What `verifyRequestGrants` proved for a request at pre-flight: the grants' signatures and scope
 * for this enclave identity and workload hash. Only their expiry depends on the time.
 */
export interface VerifiedGrantScope {
  enclaveId: Hex;
  kemPublicKey: Hex;
  workloadHash: Hex;
}

function scopeOf(ctx: EnclaveContext, workloadHash: Hex): VerifiedGrantScope {
  return {
    enclaveId: bytesToHex(ctx.enclaveId()),
    kemPublicKey: bytesToHex(ctx.keys().kemPublicKey),
    workloadHash,
  };
}

/**
 * The grants of a request `verifyRequestGrants` already verified (`verified`, for the same
 * request object) under the same enclave identity, KEM key and workload hash: only the expiry is
 * checked again at `now`, and each grant's `issuedAt` raises the time floor again. Anything else
 * verifies them in full. Raises E_GRANT_EXPIRED, or what `verifyRequestGrants` raises.
 */
function recheckGrants(
  req: Pick<JobRequest, 'inputs' | 'grants'>,
  jobId: Hex,
  ctx: EnclaveContext,
  now: number,
  workloadHash: Hex,
  verified: VerifiedGrantScope | undefined,
): ReturnType<typeof parseGrant>[] {
  const scope = scopeOf(ctx, workloadHash);
  if (
    verified === undefined ||
    !same(verified.enclaveId, scope.enclaveId) ||
    !same(verified.kemPublicKey, scope.kemPublicKey) ||
    !same(verified.workloadHash, scope.workloadHash)
  )
    return verifyRequestGrants(req, jobId, ctx, now, workloadHash);
  const grants = req.grants.map((g) => parseGrant(g));
  return req.inputs.map((ref) => {
    const grant = grants.find((g) => same(g.artifactId, ref.artifactId));
    if (grant === undefined) throw new FirnError('E_GRANT_INVALID', `no grant for input ${ref.role}`);
    if (now >= grant.expiresAt)
      throw new FirnError('E_GRANT_EXPIRED', 'grant has expired', {
        details: { expiresAt: grant.expiresAt },
      });
    ctx.time.observe(grant.issuedAt);
    return grant;
  });
}

/**
 * Verify every grant of a request (see `verifyRequestGrants`), unwrap the data keys and open the
 * inputs (from the plaintext cache on a hit with the same key, else from the host file, which
 * must hash to its id). It proves the requester's grants cover these inputs for this job; it does
 * not check the request against the chain (callers compare the commitments first). `verified`:
 * what the pre-flight of this same request object proved (the signatures are not checked twice;
 * the expiry is, at `now`).
 */
export async function openGrantedInputs(
  req: Pick<JobRequest, 'inputs' | 'grants'>,
  p: Pick<RunJobParams, 'jobId' | 'inputPaths'>,
  ctx: EnclaveContext,
  cache: ArtifactCache,
  now: number,
  workloadHash: Hex,
  verified?: VerifiedGrantScope,
): Promise<WorkloadInput[]> {
  const keys = ctx.keys();
  const grants = recheckGrants(req, p.jobId, ctx, now, workloadHash, verified);
  const inputs: WorkloadInput[] = [];
  for (const [i, ref] of req.inputs.entries()) {
    const grant = grants[i]!;
    const dataKey = await openGrantKey(grant, keys.kemPrivateKey);
    const hit = cache.get(ref.artifactId, dataKey);
    if (hit !== undefined) {
      inputs.push({
        role: ref.role,
        artifactId: ref.artifactId,
        contentType: hit.contentType,
        bytes: hit.bytes,
      });
      continue;
    }
    const path = Object.hasOwn(p.inputPaths, ref.artifactId) ? p.inputPaths[ref.artifactId] : undefined;
    if (typeof path !== 'string') throw fail('E_NOT_FOUND', `host did not pass input ${ref.artifactId}`);
    const sealed = await readInput(path, ref.artifactId);
    const header = readArtifactHeader(sealed);
    const { contentType, bytes } = unpadInput(header.contentType, await openArtifact(sealed, { dataKey }));
    cache.put(ref.artifactId, dataKey, contentType, bytes);
    inputs.push({ role: ref.role, artifactId: ref.artifactId, contentType, bytes });
  }
  return inputs;
}

/**
 * A job input as its owner sealed it, padding removed: an artifact sealed with 0872's padding (the
 * content type's `firn-pad=padme`, inside the header the AEAD authenticates) reaches the workload
 * as its body under the content type without the parameter, so a requester can keep its model's
 * and data's sizes to a Padmé bucket (docs/decisions/1852-padded-job-inputs.md). A padded artifact
 * with no padding marker is E_INPUT_INVALID (a malformed artifact of its owner's making).
 */
export function unpadInput(
  sealedContentType: string,
  plaintext: Uint8Array,
): { contentType: string; bytes: Uint8Array } {
  const t = parsePaddedContentType(sealedContentType);
  if (!t.padded) return { contentType: sealedContentType, bytes: plaintext };
  try {
    return { contentType: t.contentType, bytes: unpadPlaintext(plaintext) };
  } catch {
    throw fail('E_INPUT_INVALID', 'a padded input artifact has no padding marker');
  }
}

/**
 * Check a request against what the host says is on chain: same jobId and EIP-712 domain, and the
 * workload hash and input commitment the enclave computes itself equal the on-chain job's. It
 * proves the request is the posted job; the host's on-chain values are not verified here.
 */
export function checkRequestAgainstChain(
  req: JobRequest,
  p: Pick<RunJobParams, 'jobId' | 'domain' | 'onChain'>,
): { workloadHash: Hex; inputCommitment: Hex } {
  if (!same(req.jobId, p.jobId)) throw fail('E_JOB_INVALID', 'the request is for another job');
  if (req.chainId !== p.domain.chainId || !same(req.jobMarket, p.domain.jobMarket))
    throw fail('E_JOB_INVALID', 'the request names another chain or job market');
  // Records are signed for the ledger the requester names, never one the host picks.
  if (
    req.dataLedger !== undefined &&
    p.domain.dataLedger !== undefined &&
    !same(req.dataLedger, p.domain.dataLedger)
  )
    throw fail('E_JOB_INVALID', 'the request names another data ledger');
  // A request that names its app commits to it in the workload hash (docs/decisions/1080-app-model.md).
  const workloadHash =
    req.app === undefined
      ? computeWorkloadHash(req.kind, req.params, req.inputs)
      : computeAppWorkloadHash(req.app, req.kind, req.params, req.inputs);
  const inputCommitment = computeInputCommitment(req.inputs.map((i) => i.artifactId));
  if (!same(workloadHash, p.onChain.workloadHash))
    throw fail('E_JOB_INVALID', 'workload hash differs from the on-chain job');
  if (!same(inputCommitment, p.onChain.inputCommitment))
    throw fail('E_JOB_INVALID', 'input commitment differs from the on-chain job');
  return { workloadHash, inputCommitment };
}

/**
 * What the enclave process knows of the app its image serves: the workload names and whether the
 * image is the first-party one. In an image both come from the measured manifest
 * (`EnclaveImageManifest.app`, docs/decisions/1090); the enclave process never loads the app.
 */
export interface ServedApp {
  /** Workload names (job kinds) the app defines. */
  readonly workloads: readonly string[];
  /** True only for the first-party image (firn-ml): the only one that serves requests without `app`. */
  readonly firstParty: boolean;
}

/** The `served` of handlers given only a workload table (in-process runs): never first-party. */
function servedOf(opts: { workloads?: Record<string, Workload>; served?: ServedApp }): ServedApp {
  return opts.served ?? { workloads: Object.keys(opts.workloads ?? {}), firstParty: false };
}

/**
 * Check that this enclave serves the job: the request's `app` (when given) is this image's
 * measurement, and the app defines the workload `kind`; a request without `app` is served only by
 * the first-party image (a build-time flag in the measured manifest). Raises E_UNSUPPORTED naming which.
 */
export function checkRequestServed(
  req: Pick<JobRequest, 'kind' | 'app'>,
  ctx: Pick<EnclaveContext, 'measurement'>,
  served: ServedApp,
): void {
  if (req.app !== undefined && !same(req.app, bytesToHex(ctx.measurement)))
    throw fail(
      'E_UNSUPPORTED',
      `the job is for app ${req.app}; this enclave serves ${bytesToHex(ctx.measurement)}`,
    );
  // A request that names no app (the first-party clients') runs only on the first-party image:
  // another app's workload of the same name is not what its requester attested and granted to.
  if (req.app === undefined && !served.firstParty)
    throw fail(
      'E_UNSUPPORTED',
      `this enclave serves app ${bytesToHex(ctx.measurement)}: a job for it must name it (app)`,
    );
  if (!served.workloads.includes(req.kind))
    throw fail('E_UNSUPPORTED', `this app has no workload "${String(req.kind).slice(0, 64)}"`);
}

export interface JobHandlerOptions {
  /** Workloads for the default in-process runtime (tests, tools); an image's enclave passes none. */
  workloads?: Record<string, Workload>;
  /** The app served (names, first-party flag); default the names of `workloads`, not first-party. */
  served?: ServedApp;
  /** Enclave clock, unix seconds (tests inject it; the host cannot). */
  now?: () => number;
  cache?: ArtifactCache;
  /** Where workloads run; default in this process (the enclave's main passes a child-process runtime). */
  runtime?: MlRuntime;
  /** Requests already opened and checked by `preflightJob`, shared with `runJob`. */
  preflight?: PreflightStore<PreflightedJob>;
  /** Limits (tests lower them): workload run time, ms; one output and all outputs, bytes. */
  limits?: Partial<JobLimits>;
}

/** What one job may use: run time (ms) and output sizes (plaintext bytes). */
export interface JobLimits {
  maxWorkloadMs: number;
  maxOutputBytes: number;
  maxTotalOutputBytes: number;
}

/** How long an opened, checked request waits for the host's claim and its `runJob`, ms. */
export const PREFLIGHT_TTL_MS = 10 * 60_000;
/** How many pre-flighted requests the enclave keeps at once (oldest dropped first). */
export const MAX_PREFLIGHTED = 256;

/** A job request `preflightJob` opened and checked, kept (channel included) for its `runJob`. */
export interface PreflightedJob {
  enc: Hex;
  request: string;
  channel: EnclaveChannel;
  req: JobRequest;
  /** Date.now() when stored, ms. */
  at: number;
  /** What the pre-flight verified of `req`'s grants (their expiry is checked again at run). */
  grants?: VerifiedGrantScope;
}

/**
 * Requests that passed the enclave's pre-flight, by jobId, until the host's `runJob` (or
 * `openSession`) takes them. The channel is accepted once (its `enc` is remembered against
 * replays), so the later call reuses this entry instead of opening the channel again. Bounded
 * (`max`, oldest dropped) and expiring (`ttlMs`); an entry is handed out only for the same
 * `enc` and request bytes it was made from.
 */
export class PreflightStore<T extends { enc: Hex; request: string; at: number }> {
  private readonly entries = new Map<Hex, T>();

  constructor(
    readonly max = MAX_PREFLIGHTED,
    readonly ttlMs = PREFLIGHT_TTL_MS,
  ) {}

  private sweep(): void {
    const now = Date.now();
    for (const [k, v] of this.entries) if (now - v.at >= this.ttlMs) this.entries.delete(k);
  }

  /** Entries kept now (expired ones dropped first). */
  get size(): number {
    this.sweep();
    return this.entries.size;
  }

  has(jobId: Hex): boolean {
    this.sweep();
    return this.entries.has(jobId);
  }

  put(jobId: Hex, v: T): void {
    this.sweep();
    this.entries.delete(jobId);
    while (this.entries.size >= Math.max(1, this.max))
      this.entries.delete(this.entries.keys().next().value as Hex);
    this.entries.set(jobId, v);
  }

  /** Remove and return the entry for this job made from exactly this `enc` and request. */
  take(jobId: Hex, enc: Hex, request: string): T | undefined {
    this.sweep();
    const v = this.entries.get(jobId);
    if (v === undefined || !same(v.enc, enc) || v.request !== request) return undefined;
    this.entries.delete(jobId);
    return v;
  }

  delete(jobId: Hex): void {
    this.entries.delete(jobId);
  }
}

/**
 * The plaintext of a `{stage: "failed", error}` event, at most CHANNEL_MIN_PADDED_BYTES - 1 bytes
 * (the message cut by code points, marked "...", when longer): padded inside the channel, every
 * failure event then has one sealed length, whatever its message quotes (decision 1850).
 */
export function failureEventPlaintext(error: { code: string; message: string }): Uint8Array {
  const limit = CHANNEL_MIN_PADDED_BYTES - 1;
  const of = (message: string) =>
    utf8(JSON.stringify({ stage: 'failed', error: { code: error.code, message } }));
  let text = of(error.message);
  if (text.length <= limit) return text;
  const chars = [...error.message];
  let keep = Math.max(0, chars.length - (text.length - limit) - 3);
  do text = of(`${chars.slice(0, keep).join('')}...`);
  while (text.length > limit && keep-- > 0);
  return text;
}

/** Seal a failure to the requester as a `{stage: "failed", error}` channel event. */
function emitSealedFailure(ctx: EnclaveContext, channel: EnclaveChannel, jobId: Hex, e: unknown): void {
  const error = isFirnError(e) ? toErrorBody(e) : { code: 'E_JOB_FAILED', message: 'the workload failed' };
  const msg = channel.sealEvent(failureEventPlaintext(error));
  ctx.env.emit?.('jobEvent', { jobId, message: Buffer.from(msg).toString('base64') });
}

/**
 * The `preflightJob` handler: the cheap checks the host runs BEFORE it claims a job on chain, so
 * a request that cannot run never costs the operator gas. It opens the requester's channel
 * (E_DECRYPT when it does not open for this job), parses the request, checks it against the
 * chain facts the host passes (`checkRequestAgainstChain`), checks the job kind is known
 * (E_UNSUPPORTED) and verifies every grant (`verifyRequestGrants`), without unwrapping a key or
 * reading an input. A request that passes is kept in `opts.preflight` for the host's `runJob`.
 * Params: those of `runJob` without `outputDir`. Returns `{ok: true}`. Errors after the channel
 * opened are sealed to the requester; the host gets the code only.
 */
export function createPreflightJobHandler(
  opts: Pick<JobHandlerOptions, 'workloads' | 'served' | 'now'> & {
    preflight: PreflightStore<PreflightedJob>;
  },
): Handler {
  const clock = opts.now ?? (() => Math.floor(Date.now() / 1000));
  return async (raw, ctx) => {
    const p = parseRunJobParams({ ...raw, outputDir: '' });
    const { channel, plaintext } = await openChannel(ctx, p, jobChannelInfo(p.jobId), 'job');
    try {
      const req = parseRequest(plaintext, parseJobRequest, 'job');
      const { workloadHash } = checkRequestAgainstChain(req, p);
      checkOutputBound(req, p);
      checkRequestServed(req, ctx, servedOf(opts));
      verifyRequestGrants(req, p.jobId, ctx, ctx.time.now(clock()), workloadHash);
      opts.preflight.put(p.jobId, {
        enc: p.enc,
        request: p.request,
        channel,
        req,
        at: Date.now(),
        grants: scopeOf(ctx, workloadHash),
      });
      return { ok: true };
    } catch (e) {
      emitSealedFailure(ctx, channel, p.jobId, e);
      throw hostFailure(e);
    }
  };
}

/**
 * Accept the requester's HPKE channel and open its first message. A request that does not open
 * for this job is E_DECRYPT; one that opens but does not parse is E_JOB_INVALID (its message may
 * quote the requester's request, so callers seal it to the requester, see `sealedFailure`).
 */
export async function acceptRequest<T>(
  ctx: EnclaveContext,
  p: Pick<RunJobParams, 'enc' | 'request'>,
  info: Uint8Array,
  parse: (plaintext: Uint8Array) => T,
  what: 'job' | 'session',
): Promise<{ channel: EnclaveChannel; request: T }> {
  const { channel, plaintext } = await openChannel(ctx, p, info, what);
  return { channel, request: parseRequest(plaintext, parse, what) };
}

/** How many accepted channel keys (HPKE `enc`) the enclave remembers to refuse replays. */
export const MAX_REMEMBERED_CHANNELS = 100_000;
const acceptedChannels = new Set<string>();
/** Jobs whose workload this enclave process started (bounded like `acceptedChannels`). */
const ranJobs = new Set<string>();

/**
 * Accept a channel once. The response and event keys derive from the requester's `enc`, and
 * their nonces count from zero, so a host replaying a request would make the enclave seal a
 * second, different message under a key and nonce already used. A replayed `enc` is refused
 * (E_CHANNEL_SEQUENCE); the memory is per enclave process and bounded (oldest forgotten first).
 */
async function openChannel(
  ctx: EnclaveContext,
  p: Pick<RunJobParams, 'enc' | 'request'>,
  info: Uint8Array,
  what: 'job' | 'session',
): Promise<{ channel: EnclaveChannel; plaintext: Uint8Array }> {
  const enc = bytesToHex(hexBytes(p.enc, 'enc', 32));
  const channel = await acceptChannel(ctx.keys().kemPrivateKey, hexBytes(enc, 'enc', 32), { info });
  let plaintext: Uint8Array;
  try {
    plaintext = await channel.openRequest(p.request);
  } catch {
    throw fail('E_DECRYPT', `${what} request does not open for this job`);
  }
  // Only a request that opened counts, so garbage from the host cannot evict real entries.
  if (acceptedChannels.has(enc))
    throw fail('E_CHANNEL_SEQUENCE', `this ${what} request was already accepted`);
  acceptedChannels.add(enc);
  if (acceptedChannels.size > MAX_REMEMBERED_CHANNELS)
    acceptedChannels.delete(acceptedChannels.values().next().value as string);
  return { channel, plaintext };
}

function parseRequest<T>(plaintext: Uint8Array, parse: (plaintext: Uint8Array) => T, what: string): T {
  try {
    return parse(plaintext);
  } catch (e) {
    throw new FirnError('E_JOB_INVALID', isFirnError(e) ? e.message : `${what} request is invalid`);
  }
}

/**
 * What the host is told about a failed job: the stable code and a fixed text. The full message
 * (which may name a column, a row or a tensor of the requester's data) travels only sealed to
 * the requester, as a `{stage: "failed", error: {code, message}}` channel event.
 */
export function hostFailure(e: unknown): FirnError {
  const { code } = toErrorBody(e);
  return new FirnError(
    code,
    `the job failed in the enclave (${code}); the full message is sealed to the requester`,
  );
}

/**
 * The `runJob` handler: open the request channel, check it against the on-chain job, verify every
 * grant, decrypt the inputs, run the workload, seal the outputs to the requester and sign the
 * Work Proof. Any failure is a typed error; nothing secret reaches the host.
 */
export function createRunJobHandler(opts: JobHandlerOptions): Handler {
  const cache = opts.cache ?? new ArtifactCache();
  const clock = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const runtime = opts.runtime ?? inProcessRuntime(opts.workloads ?? {});
  const served = servedOf(opts);
  return async (raw, ctx) => {
    const p = parseRunJobParams(raw);
    // A request that passed `preflightJob` was opened then; its channel is taken over here.
    const pre = opts.preflight?.take(p.jobId, p.enc, p.request);
    const { channel, plaintext } = pre
      ? { channel: pre.channel, plaintext: undefined }
      : await openChannel(ctx, p, jobChannelInfo(p.jobId), 'job');
    try {
      const req = pre ? pre.req : parseRequest(plaintext!, parseJobRequest, 'job');
      return await runRequest(
        req,
        p,
        ctx,
        channel,
        cache,
        clock,
        served,
        runtime,
        {
          maxWorkloadMs: opts.limits?.maxWorkloadMs ?? MAX_WORKLOAD_MS,
          maxOutputBytes: opts.limits?.maxOutputBytes ?? MAX_OUTPUT_BYTES,
          maxTotalOutputBytes: opts.limits?.maxTotalOutputBytes ?? MAX_TOTAL_OUTPUT_BYTES,
        },
        pre?.grants,
      );
    } catch (e) {
      // From here on the requester holds the channel: the message goes to them sealed, the host gets the code.
      emitSealedFailure(ctx, channel, p.jobId, e);
      throw hostFailure(e);
    } finally {
      // After the answer has gone out (a macrotask after this handler settles): the runtime's spare.
      setImmediate(() => runtime.jobFinished?.());
    }
  };
}

async function runRequest(
  req: JobRequest,
  p: RunJobParams,
  ctx: EnclaveContext,
  channel: EnclaveChannel,
  cache: ArtifactCache,
  clock: () => number,
  served: ServedApp,
  runtime: MlRuntime,
  limits: JobLimits,
  verifiedGrants: VerifiedGrantScope | undefined,
): Promise<RunJobResult> {
  // Host clock, never below the enclave's time floor (grant times and earlier host times).
  const now = () => ctx.time.now(clock());
  const startedAt = now();
  const { workloadHash, inputCommitment } = checkRequestAgainstChain(req, p);
  checkOutputBound(req, p);
  checkRequestServed(req, ctx, served);
  // The requester and every recipient the job's params list (1101), all covered by the workload hash.
  const recipients = jobRecipients(req.resultRecipient, req.params);
  // The runtime may take its spare child now: the hand-over overlaps the grant checks and input reads.
  runtime.prepareJob?.(req.kind);

  const keys = ctx.keys();
  const enclaveId = bytesToHex(ctx.enclaveId());
  const inputs = await openGrantedInputs(req, p, ctx, cache, now(), workloadHash, verifiedGrants);
  // The grants serve one run of the job: a fresh request (new channel) for a job this enclave
  // process already ran is refused, so an app's randomness cannot be drawn again.
  if (ranJobs.has(p.jobId)) throw fail('E_CONFLICT', 'this enclave already ran this job');
  ranJobs.add(p.jobId);
  if (ranJobs.size > MAX_REMEMBERED_CHANNELS) ranJobs.delete(ranJobs.values().next().value as string);

  // Events come from the app (through the runtime child): plain JSON objects up to 64 KiB, else
  // the job fails (E_JOB_FAILED) instead of the enclave process throwing while relaying them.
  const emitProgress = (event: Record<string, unknown>) => {
    const msg = channel.sealEvent(utf8(appEventJson(event)));
    ctx.env.emit?.('jobEvent', { jobId: p.jobId, message: Buffer.from(msg).toString('base64') });
  };
  emitProgress({ stage: 'started', kind: req.kind });
  // Records the app asks for; signed here, in the process that holds the key, never in the runtime.
  const signedData: SignedDataRecord[] = [];
  // A refusal here may depend on the host (the ledger it passes): the app may turn it into a typed
  // error, so a run that saw one never gets its failure attested (decision 1595).
  let hostRefused = false;
  const signData = async (digest: Uint8Array, o: { topic: string }): Promise<SignedDataRecord> => {
    if (p.domain.dataLedger === undefined || req.dataLedger === undefined) {
      hostRefused = true;
      throw fail(
        'E_UNSUPPORTED',
        'the node or the request named no data ledger for this job, so the enclave cannot sign data',
      );
    }
    if (signedData.length >= MAX_SIGNED_DATA_PER_JOB) {
      hostRefused = true;
      throw fail('E_TOO_LARGE', `a job signs at most ${MAX_SIGNED_DATA_PER_JOB} data records`);
    }
    const record = signDataRecord(
      { signingKey: keys.signingKey, enclaveId: ctx.enclaveId() },
      { chainId: req.chainId, address: req.dataLedger },
      digest,
      o.topic,
      p.jobId,
    );
    signedData.push(record);
    return record;
  };
  // The job's randomness: HKDF of the enclave's signing key over the jobId and workload hash, so
  // every run of this job (a replay after a restart included) draws the same bytes and signs the
  // same records; the seed is one-way, so the runtime child learns nothing of the key.
  const randomSeed = hkdfSha256(
    keys.signingKey,
    utf8(APP_RANDOM_TAG),
    concatBytes(hexBytes(p.jobId, 'jobId', 32), hexBytes(workloadHash, 'workloadHash', 32)),
    32,
  );
  // Stopped at the job's deadline (when the host names one) or the enclave's cap, whichever is first.
  const untilDeadline =
    typeof p.deadline === 'number' && Number.isFinite(p.deadline)
      ? Math.max(0, (p.deadline - now()) * 1000)
      : Number.POSITIVE_INFINITY;
  const timeoutMs = Math.min(limits.maxWorkloadMs, untilDeadline);
  let result: Awaited<ReturnType<Workload>>;
  const work = runtime.runWorkload(
    req.kind,
    // The salt (decision 1854) is hashed with the params, never shown to the workload.
    { params: workloadParams(req.params), inputs, progress: emitProgress, now, signData, randomSeed },
    { timeoutMs },
  );
  // The outputs' data keys and their HPKE wraps to the recipients do not depend on the outputs:
  // drawn while the workload runs (after its start went out), as many as this kind returned last time.
  const prepared = prepareOutputKeys(recipients, expectedOutputs.get(req.kind) ?? 0);
  try {
    result = await work;
  } catch (e) {
    void prepared.then((keys) => keys.forEach(discardArtifactKey));
    // A failure that is a function of the committed workload and inputs only is signed for the
    // node's failJobAttested (decision 1595); never a timeout, a crash or anything the host caused.
    const code = isFirnError(e) ? e.code : undefined;
    const reasonCode = attestableFailureReason(e, {
      fromWorkload: true,
      timedOut: code === 'E_TIMEOUT',
      crashed: code === 'E_RUNTIME_CRASHED',
      hostRefused,
    });
    if (reasonCode !== undefined) {
      const failure: JobFailureFields = {
        jobId: p.jobId,
        enclaveId,
        measurement: bytesToHex(ctx.measurement),
        workloadHash,
        inputCommitment,
        reasonCode,
        failedAt: BigInt(Math.max(now(), startedAt)),
      };
      const signature = bytesToHex(signDigest(keys.signingKey, jobFailureDigestBytes(p.domain, failure)));
      // Public: ids, the code's number and a time; the message stays sealed to the requester.
      ctx.env.emit?.('jobFailure', signedJobFailureToJson({ failure, signature }));
    }
    // Typed workload errors pass through (the runtime maps them to app codes); anything else is
    // reported without its message.
    if (isFirnError(e)) throw e;
    throw fail('E_JOB_FAILED', 'the workload failed');
  }
  // Data keys not used by an output (or all of them when the result is refused) are zeroed.
  const keysReady = await prepared;
  try {
    return await finishJob(result, keysReady);
  } finally {
    for (const k of keysReady) if (!k.used) discardArtifactKey(k);
  }

  /** Check the workload's result, seal and write its outputs, sign the Work Proof. */
  async function finishJob(
    result: Awaited<ReturnType<Workload>>,
    keysReady: PreparedArtifactKey[],
  ): Promise<RunJobResult> {
    checkWorkloadResult(result);
    if (result.outputs.length > MAX_OUTPUTS)
      throw fail('E_JOB_FAILED', `a workload must return 1..${MAX_OUTPUTS} outputs`);
    // Output sizes are checked before anything is sealed or written to the host's disk.
    let total = 0;
    for (const o of result.outputs as WorkloadOutput[]) {
      if (o.bytes.length > limits.maxOutputBytes)
        throw new TooLargeError(`output "${o.role}"`, o.bytes.length, limits.maxOutputBytes);
      total += o.bytes.length;
    }
    if (total > limits.maxTotalOutputBytes)
      throw new TooLargeError("the job's outputs together", total, limits.maxTotalOutputBytes);
    // The requester's declared bound (decision 1690) counts the sealed outputs as the node stores
    // them, each rounded up to whole storage blocks. Sealing only adds bytes, so the plaintext is
    // checked first (nothing sealed when it alone is over), then each sealed output before it is
    // written to the host's disk.
    const bound = req.maxOutputBytes;
    const overBound = (n: number) =>
      new TooLargeError(
        `the job's outputs (sealed, in whole ${STORAGE_BLOCK_BYTES}-byte blocks) against its declared maxOutputBytes`,
        n,
        bound!,
      );
    if (bound !== undefined) {
      const least = (result.outputs as WorkloadOutput[]).reduce(
        (n, o) => n + chargedBytes(o.bytes.length),
        0,
      );
      if (least > bound) throw overBound(least);
    }
    let sealedCharge = 0;

    expectedOutputs.set(req.kind, Math.min(result.outputs.length, MAX_OUTPUTS));
    // Small outputs are written with synchronous calls (a few hundred microseconds for all of them,
    // against several libuv round trips each); larger ones through the pool.
    const syncWrite = total <= SYNC_WRITE_BYTES;
    const sealOne = async (o: WorkloadOutput, i: number): Promise<RunJobOutput> => {
      const pre = keysReady[i];
      const sealed = await sealArtifact(o.bytes, {
        recipients,
        contentType: o.contentType,
        ...(pre === undefined ? {} : { prepared: pre }),
      });
      // Counted with no await between the check and the sum, so outputs sealed together cannot
      // pass it together.
      sealedCharge += chargedBytes(sealed.length);
      if (bound !== undefined && sealedCharge > bound) throw overBound(sealedCharge);
      const id = artifactId(sealed);
      const path = join(p.outputDir, id.slice(2));
      if (syncWrite) {
        writeFileSync(`${path}.part`, sealed);
        renameSync(`${path}.part`, path);
      } else {
        await writeFile(`${path}.part`, sealed);
        await rename(`${path}.part`, path);
      }
      return { role: o.role, artifactId: id, contentType: o.contentType, size: sealed.length, path };
    };
    // Small outputs are sealed and written together (their key wraps and file writes overlap on
    // libuv's pool); large ones one at a time, so at most one sealed copy is held. Order is kept.
    const outputs: RunJobOutput[] = [];
    if (total <= PARALLEL_SEAL_BYTES)
      outputs.push(...(await Promise.all((result.outputs as WorkloadOutput[]).map(sealOne))));
    else
      for (const [i, o] of (result.outputs as WorkloadOutput[]).entries()) outputs.push(await sealOne(o, i));
    const finishedAt = Math.max(now(), startedAt);
    const proof: WorkProofFields = {
      jobId: p.jobId,
      enclaveId,
      measurement: bytesToHex(ctx.measurement),
      workloadHash,
      inputCommitment,
      outputCommitment: computeOutputCommitment(outputs),
      startedAt: BigInt(startedAt),
      finishedAt: BigInt(finishedAt),
      workUnits: result.workUnits,
    };
    const signature = bytesToHex(signDigest(keys.signingKey, workProofDigestBytes(p.domain, proof)));
    emitProgress({ stage: 'finished', workUnits: result.workUnits.toString() });
    // Each output's sealed size travels sealed to the requester with its id: the host's listing of
    // sizes is not committed by the proof, so the requester caps each download at this size
    // (docs/decisions/1600-downloads-capped-at-the-sealed-size.md).
    const summary = {
      jobId: p.jobId,
      outputs: outputs.map((o) => ({
        role: o.role,
        artifactId: o.artifactId,
        contentType: o.contentType,
        size: o.size,
      })),
      workUnits: result.workUnits.toString(),
      ...(result.report === undefined ? {} : { report: result.report }),
      outputDigests: result.outputs.map((o) => bytesToHex(sha256(o.bytes))),
      ...(signedData.length === 0 ? {} : { signedData }),
    };
    const response = Buffer.from(channel.sealResponse(utf8(JSON.stringify(summary, bigintText)))).toString(
      'base64',
    );
    return {
      proof: workProofToJson(proof, signature, p.domain, bytesToHex(keys.enclaveAddress)),
      outputs,
      response,
      signedData,
    };
  }
}
