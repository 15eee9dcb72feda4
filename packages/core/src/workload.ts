import { bytesToHex, type Hex, hexBytes, utf8 } from './bytes.ts';
import { InvalidInputError } from './errors.ts';
import { canonicalize } from './evidence.ts';
import { encodeFields, taggedSha256 } from './hash.ts';
import { TAGS } from './tags.ts';

/**
 * The commitments a job is posted, run and proved under (ARCHITECTURE §5–§6). Requester, enclave,
 * node and verifiers all compute them with these functions, so they agree byte for byte.
 */

/** One input or output of a job as committed: its role and its sealed artifact id. */
export interface ArtifactRef {
  role: string;
  artifactId: Hex;
}

export const MAX_ROLE_LENGTH = 64;
export const MAX_JOB_KIND_LENGTH = 64;
const ROLE_RE = /^[a-z][a-z0-9_.-]*$/;

/** A role or kind is short lowercase ASCII, so it can never smuggle separators or odd bytes. */
export function assertRole(role: unknown, what = 'role'): string {
  if (typeof role !== 'string' || role.length === 0 || role.length > MAX_ROLE_LENGTH || !ROLE_RE.test(role))
    throw new InvalidInputError(
      `${what} must match ${ROLE_RE.source} and be at most ${MAX_ROLE_LENGTH} characters`,
    );
  return role;
}

/** Keys that JavaScript treats specially on assignment; they would vanish or alias in canonical JSON. */
const FORBIDDEN_PARAM_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
export const MAX_PARAMS_DEPTH = 32;

/**
 * Check that params are plain JSON data: objects whose prototype is Object.prototype or null
 * (so `{__proto__: …}` written as a literal, a Date or a Map is refused rather than silently
 * dropped), no `__proto__` / `constructor` / `prototype` key at any depth, at most
 * MAX_PARAMS_DEPTH levels. Two different params could otherwise canonicalize to one workload hash.
 * Throws E_INVALID_INPUT naming the path.
 */
export function assertPlainParams(v: unknown, path = 'params', depth = 0): void {
  if (depth > MAX_PARAMS_DEPTH)
    throw new InvalidInputError(`${path} nests deeper than ${MAX_PARAMS_DEPTH} levels`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) assertPlainParams(v[i], `${path}[${i}]`, depth + 1);
    return;
  }
  if (v === null || typeof v !== 'object') return;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null)
    throw new InvalidInputError(
      `${path} must be plain JSON data (an object with another prototype was given)`,
    );
  for (const k of Object.keys(v)) {
    if (FORBIDDEN_PARAM_KEYS.has(k))
      throw new InvalidInputError(`${path} has the key "${k}", which params may not use`, {
        details: { key: k },
      });
    assertPlainParams((v as Record<string, unknown>)[k], `${path}.${k.slice(0, 64)}`, depth + 1);
  }
}

/**
 * Canonical JSON (sorted keys, no whitespace) of job params; bigint, NaN, infinities and the
 * keys `__proto__`, `constructor` and `prototype` are refused (E_INVALID_INPUT), not guessed.
 */
export function canonicalParamsJson(params: Record<string, unknown>): string {
  assertPlainParams(params);
  return JSON.stringify(canonicalize(params), (_k, v) => {
    if (typeof v === 'bigint') throw new InvalidInputError('params must not contain bigint values');
    if (typeof v === 'number' && !Number.isFinite(v))
      throw new InvalidInputError('params must not contain NaN or infinities');
    return v;
  });
}

function refFields(refs: readonly ArtifactRef[], what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  refs.forEach((r, i) => {
    out.push(
      utf8(assertRole(r.role, `${what}[${i}].role`)),
      hexBytes(r.artifactId, `${what}[${i}].artifactId`, 32),
    );
  });
  return out;
}

/**
 * The params key of a job's salt (docs/decisions/1854-salted-workload-hash.md): 32 random bytes, hex,
 * that the SDK adds to every job's params so the workload hash, public on chain and to the host,
 * confirms no guess of the params (a target column, a vote, a threshold). The enclave hashes it
 * with the params and leaves it out of what the workload sees (`workloadParams`).
 */
export const SALT_PARAM = 'firn.salt';

/** `params` with a fresh SALT_PARAM (params that carry one already are returned as they are). */
export function withParamsSalt(params: Record<string, unknown>): Record<string, unknown> {
  if (Object.hasOwn(params, SALT_PARAM)) return params;
  return { ...params, [SALT_PARAM]: bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32))) };
}

/** The params a workload sees: the job's params without SALT_PARAM. */
export function workloadParams(params: Record<string, unknown>): Record<string, unknown> {
  if (!Object.hasOwn(params, SALT_PARAM)) return params;
  const { [SALT_PARAM]: _salt, ...rest } = params;
  return rest;
}

/**
 * workloadHash = taggedSha256(TAGS.workloadHash, kind, canonical params JSON, role1, id1, role2,
 * id2, ...): what the job is, independent of who runs it.
 */
export function computeWorkloadHash(
  kind: string,
  params: Record<string, unknown>,
  inputs: readonly ArtifactRef[],
): Hex {
  return bytesToHex(
    taggedSha256(
      TAGS.workloadHash,
      utf8(assertRole(kind, 'kind')),
      utf8(canonicalParamsJson(params)),
      ...refFields(inputs, 'inputs'),
    ),
  );
}

/**
 * workloadHash of a job that names its app (docs/decisions/1080-app-model.md) =
 * taggedSha256(TAGS.appWorkload, app measurement (32 bytes), workload name, canonical params
 * JSON, role1, id1, ...): the same job for another app's image hashes differently.
 */
export function computeAppWorkloadHash(
  app: Hex,
  workload: string,
  params: Record<string, unknown>,
  inputs: readonly ArtifactRef[],
): Hex {
  return bytesToHex(
    taggedSha256(
      TAGS.appWorkload,
      hexBytes(app, 'app', 32),
      utf8(assertRole(workload, 'workload')),
      utf8(canonicalParamsJson(params)),
      ...refFields(inputs, 'inputs'),
    ),
  );
}

/** inputCommitment = taggedSha256(TAGS.inputCommitment, id1, id2, ...) over the input artifact ids in order. */
export function computeInputCommitment(artifactIds: readonly Hex[]): Hex {
  return bytesToHex(
    taggedSha256(TAGS.inputCommitment, ...artifactIds.map((id, i) => hexBytes(id, `inputs[${i}]`, 32))),
  );
}

/** outputCommitment = taggedSha256(TAGS.outputCommitment, role1, id1, ...) over the sealed outputs in order. */
export function computeOutputCommitment(outputs: readonly ArtifactRef[]): Hex {
  return bytesToHex(taggedSha256(TAGS.outputCommitment, ...refFields(outputs, 'outputs')));
}

export type JobKind = 'inference' | 'training';

/**
 * Allocation unit a node charges stored files in: the common filesystem block (ext4, xfs, APFS).
 * A job's declared output bound is measured in it too, so the enclave's count and the node's
 * quota charge of the same outputs agree byte for byte.
 */
export const STORAGE_BLOCK_BYTES = 4096;

/**
 * The bytes a stored file of `size` bytes is charged: its size rounded up to whole
 * STORAGE_BLOCK_BYTES blocks, and at least one block (an empty file still takes an inode).
 */
export function chargedBytes(size: number): number {
  return Math.max(1, Math.ceil(Math.max(0, size) / STORAGE_BLOCK_BYTES)) * STORAGE_BLOCK_BYTES;
}

/**
 * The output bound of a job that declares none, bytes: one storage block, what the node reserves
 * before the claim (decision 1675). Such a job's outputs are bounded only by the enclave's caps
 * and checked against the quotas when stored (decision 1690).
 */
export const DEFAULT_OUTPUT_BOUND_BYTES = STORAGE_BLOCK_BYTES;
/**
 * Largest output bound a job may declare, bytes (2 GiB): above what the enclave's own caps
 * (1 GiB of plaintext outputs) can produce once sealed, so a larger one would only reserve more.
 */
export const MAX_OUTPUT_BOUND_BYTES = 2 * 1024 ** 3;

/**
 * Check a declared output bound (`JobRequest.maxOutputBytes`, the `maxOutputBytes` of a job
 * submission): a whole number of bytes from DEFAULT_OUTPUT_BOUND_BYTES (4096) to
 * MAX_OUTPUT_BOUND_BYTES. The bound covers the job's sealed outputs as a node stores them: the sum
 * of each one's size rounded up to whole 4096-byte blocks (chargedBytes). Raises E_INVALID_INPUT
 * naming `what`.
 */
export function parseOutputBound(v: unknown, what = 'maxOutputBytes'): number {
  if (
    typeof v !== 'number' ||
    !Number.isSafeInteger(v) ||
    v < DEFAULT_OUTPUT_BOUND_BYTES ||
    v > MAX_OUTPUT_BOUND_BYTES
  )
    throw new InvalidInputError(
      `${what} must be a whole number of bytes from ${DEFAULT_OUTPUT_BOUND_BYTES} to ${MAX_OUTPUT_BOUND_BYTES} (2 GiB)`,
      { details: { min: DEFAULT_OUTPUT_BOUND_BYTES, max: MAX_OUTPUT_BOUND_BYTES } },
    );
  return v;
}

/**
 * The job request a requester sends to an enclave inside the HPKE channel (docs/job-protocol.md).
 * Grants are carried as opaque objects here and parsed by the enclave with parseGrant.
 */
export interface JobRequest {
  v: 1;
  jobId: Hex;
  kind: string;
  inputs: ArtifactRef[];
  grants: unknown[];
  params: Record<string, unknown>;
  /** X25519 public key (hex) the outputs are sealed to. */
  resultRecipient: Hex;
  /** The EIP-712 domain the proof is signed under; bound here so the host cannot swap it. */
  chainId: number;
  jobMarket: Hex;
  /** The app's measurement (32 bytes), when the job names its app; see computeAppWorkloadHash. */
  app?: Hex;
  /** The FirnDataLedger the app's signed-data records are for; without it the enclave signs none. */
  dataLedger?: Hex;
  /**
   * The most storage the job's sealed outputs may take, bytes: the sum of each output's sealed size
   * rounded up to whole STORAGE_BLOCK_BYTES blocks (parseOutputBound). The node reserves it against
   * the quotas before its claim and the enclave fails a job whose outputs exceed it (E_TOO_LARGE).
   * Absent: DEFAULT_OUTPUT_BOUND_BYTES is reserved and only the enclave's caps apply (decision 1690).
   */
  maxOutputBytes?: number;
}

export const MAX_JOB_REQUEST_BYTES = 1024 * 1024;
export const MAX_JOB_INPUTS = 16;
const REQUEST_KEYS = new Set([
  'v',
  'jobId',
  'kind',
  'inputs',
  'grants',
  'params',
  'resultRecipient',
  'chainId',
  'jobMarket',
  'app',
  'dataLedger',
  'maxOutputBytes',
]);

/** Parse a job request from its JSON bytes: size-capped, every field checked; grants stay unparsed. */
export function parseJobRequest(bytes: Uint8Array): JobRequest {
  if (bytes.length > MAX_JOB_REQUEST_BYTES) throw new InvalidInputError('job request too large');
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new InvalidInputError('job request is not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new InvalidInputError('job request must be an object');
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!REQUEST_KEYS.has(k)) throw new InvalidInputError(`unknown job request field ${k}`);
  if (r.v !== 1) throw new InvalidInputError('unsupported job request version');
  if (!Array.isArray(r.inputs) || r.inputs.length === 0 || r.inputs.length > MAX_JOB_INPUTS)
    throw new InvalidInputError(`inputs must be 1..${MAX_JOB_INPUTS} artifacts`);
  if (!Array.isArray(r.grants) || r.grants.length > MAX_JOB_INPUTS)
    throw new InvalidInputError('grants must be an array');
  if (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params))
    throw new InvalidInputError('params must be an object');
  assertPlainParams(r.params);
  if (typeof r.chainId !== 'number' || !Number.isSafeInteger(r.chainId) || r.chainId <= 0)
    throw new InvalidInputError('chainId must be a positive integer');
  const inputs: ArtifactRef[] = r.inputs.map((x: unknown, i: number) => {
    const e = x as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null) throw new InvalidInputError(`inputs[${i}] must be an object`);
    return {
      role: assertRole(e.role, `inputs[${i}].role`),
      artifactId: bytesToHex(hexBytes(e.artifactId, `inputs[${i}].artifactId`, 32)),
    };
  });
  const roles = new Set(inputs.map((i) => i.role));
  if (roles.size !== inputs.length) throw new InvalidInputError('input roles must be distinct');
  // One artifact under two roles would let one owner's grant open their data as another party's
  // input too (a self-join: overlap(bob, bob) = the size of bob's list).
  if (new Set(inputs.map((i) => i.artifactId)).size !== inputs.length)
    throw new InvalidInputError('input artifacts must be distinct (one artifact under two roles)');
  return {
    v: 1,
    jobId: bytesToHex(hexBytes(r.jobId, 'jobId', 32)),
    kind: assertRole(r.kind, 'kind'),
    inputs,
    grants: r.grants,
    params: r.params as Record<string, unknown>,
    resultRecipient: bytesToHex(hexBytes(r.resultRecipient, 'resultRecipient', 32)),
    chainId: r.chainId,
    jobMarket: bytesToHex(hexBytes(r.jobMarket, 'jobMarket', 20)),
    ...(r.app === undefined ? {} : { app: bytesToHex(hexBytes(r.app, 'app', 32)) }),
    ...(r.dataLedger === undefined
      ? {}
      : { dataLedger: bytesToHex(hexBytes(r.dataLedger, 'dataLedger', 20)) }),
    ...(r.maxOutputBytes === undefined ? {} : { maxOutputBytes: parseOutputBound(r.maxOutputBytes) }),
  };
}

/** HPKE info of a job's channel: binds the job request tag and the jobId (both ends pass it). */
export function jobChannelInfo(jobId: Hex): Uint8Array {
  return encodeFields([utf8(TAGS.jobRequest), hexBytes(jobId, 'jobId', 32)]);
}
