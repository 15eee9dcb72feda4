/**
 * `@firn/app`: the SDK a developer writes a firn app with (ARCHITECTURE §5, issue 12;
 * docs/decisions/1080-app-model.md). An app is a name, a version and named workloads; `firn app
 * build` bundles it with the enclave framework into an enclave image whose measurement is the
 * app's identity. A workload runs inside the enclave's keyless runtime process
 * (docs/decisions/0851-ml-runtime-process.md): it sees its job's decrypted inputs and params and
 * returns outputs, which the framework seals to the job's recipients and commits to in the Work
 * Proof. It never sees a key; `signData` asks the enclave process to sign.
 *
 * **What is public** (docs/decisions/1769-app-public-fields.md). Inputs, params, progress events,
 * output bytes, the report and error messages travel sealed. These fields an app chooses do not:
 * the host sees them in clear, and most reach the chain.
 * - `signData`'s digest and topic: posted on the data ledger. An unsalted hash of a guessable value
 *   (a vote, a count, a small file) gives that value away to anyone who hashes candidates; use
 *   `ctx.commit(bytes)` and return its salt in a sealed output.
 * - `workUnits`: in the Work Proof, on chain (FirnJobMarket ProofSubmitted) and in the host's job
 *   record. Derive it from what is already public (input byte sizes) or make it a constant, never
 *   from counts or values read out of the plaintext.
 * - Each output's role, content type and sealed size, and the number of outputs: in the host's job
 *   record and the output commitment. Keep roles and content types constant, the count fixed, and
 *   pad outputs whose length would depend on a secret.
 * - The error code a workload throws (the message stays sealed): make it depend on what the
 *   requester must fix, not on a secret.
 *
 * ```ts
 * import { defineApp } from '@firn/app';
 * export default defineApp({
 *   name: 'example', version: '1.0.0',
 *   workloads: {
 *     async reverse(ctx) {
 *       const data = ctx.input('data');
 *       const c = ctx.commit(data); // salted: the public record confirms no guess of `data`
 *       await ctx.signData(c.digest, { topic: 'input-commitment' });
 *       return {
 *         outputs: [
 *           { role: 'result', contentType: 'application/octet-stream', bytes: data.slice().reverse() },
 *           { role: 'salt', contentType: 'application/octet-stream', bytes: c.salt }, // sealed to the requester
 *         ],
 *         workUnits: BigInt(data.length), // the sealed input's size: public already
 *       };
 *     },
 *   },
 * });
 * ```
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { assertRole, FirnError, type Hex, hexBytes, InvalidInputError } from '@firn/core';

export { FirnError } from '@firn/core';
export { APP_ERROR_CODES, appErrorBody, MAX_APP_ERROR_MESSAGE } from './errors.ts';
export type { ErrorCode, Hex } from '@firn/core';

/** One decrypted input of a job, as the workload sees it. */
export interface AppInput {
  /** The role the requester gave it (lowercase ASCII, e.g. "data", "model"). */
  role: string;
  /** SHA-256 of the sealed artifact (what the job's input commitment covers). */
  artifactId: Hex;
  /** The content type the owner sealed it with. */
  contentType: string;
  /** Plaintext. */
  bytes: Uint8Array;
}

/**
 * One output a workload returns; the framework seals it to every recipient of the job. Only
 * `bytes` is sealed: the role, the content type, the sealed size and the number of outputs are
 * seen by the host in clear, so none of them may depend on a secret (pad `bytes` to a fixed size
 * when its length would).
 */
export interface AppOutput {
  /**
   * Lowercase ASCII role, unique within the result (the requester's `firn run` writes DIR/ROLE).
   * Public: use a constant.
   */
  role: string;
  /** Public: use a constant. */
  contentType: string;
  /** Sealed to the job's recipients; its length is public. */
  bytes: Uint8Array;
}

export interface SignDataOptions {
  /**
   * 1..64 characters of [a-z0-9_.:-]; bound into the signed hash and the ledger record's uri.
   * Public: the host and every chain reader see it. Use a constant, never a value from the inputs.
   */
  topic: string;
}

/**
 * A salted commitment (`ctx.commit`): `digest` = SHA-256(COMMIT_TAG || salt || bytes), with a
 * 32-byte `salt` from `ctx.random`. Publishing `digest` (with `signData`) reveals nothing about
 * `bytes` to someone without `salt`, even when `bytes` is one of a few guessable values; whoever
 * holds `salt` and `bytes` later opens it with `verifyCommitment`. Return `salt` in an output (sealed
 * to the requester), never in a public field.
 */
export interface Commitment {
  /** 32 bytes: what to sign with `signData`. */
  digest: Uint8Array;
  /** 32 bytes of `ctx.random`: secret; the opening of the commitment together with the bytes. */
  salt: Uint8Array;
}

/**
 * A record the enclave signed for the data ledger (FirnDataLedger `SignedData`; see
 * `@firn/core` signedData.ts for the hash and the EIP-712 digest). The node posts it on chain;
 * anyone can check it (`firn data verify`).
 */
export interface SignedDataRecord {
  v: 1;
  topic: string;
  /** The app's 32-byte digest. */
  digest: Hex;
  /** signedDataHash(topic, digest): the ledger's `dataHash`. */
  dataHash: Hex;
  /** signedDataUri(topic): the ledger's `uri`. */
  uri: string;
  enclaveId: Hex;
  /** The enclave's signing address (checked against the registry by verifiers, never trusted). */
  enclaveAddress: Hex;
  /** 65-byte r || s || v over the EIP-712 SignedData digest under the ledger's domain. */
  signature: Hex;
  /** The data ledger (EIP-712 domain) the signature is for. */
  ledger: { chainId: number; address: Hex };
  /** The job whose run signed it. */
  jobId?: Hex;
}

/** The context every workload is called with. */
export interface WorkloadContext {
  /** The job's params (plain JSON data, as committed in the workload hash). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Every input of the job, in the order the requester listed them. */
  readonly inputs: readonly AppInput[];
  /**
   * The plaintext of the input with this role. Throws E_INPUT_INVALID when the job has none
   * (the requester fixes it by adding `--input ROLE=FILE`).
   */
  input(role: string): Uint8Array;
  /** Send a progress event (plain JSON data) to the requester; the framework encrypts it. */
  progress(event: Record<string, unknown>): void;
  /** The enclave's trusted time, unix seconds (never below grant and chain times it has seen). */
  now(): number;
  /**
   * `n` bytes (0..65536), unpredictable to anyone but the enclave and the same on every run of the
   * same job (derived per job from the enclave's key, the jobId and the workload hash): a host that
   * replays a job after restarting the enclave gets the same draw, not a second one. Apps must use
   * this, not `crypto.getRandomValues`, for anything whose outcome matters.
   */
  random(n: number): Uint8Array;
  /**
   * Have the enclave sign a 32-byte digest for the data ledger under a topic. Resolves to the
   * record the node will post. At most MAX_SIGNED_DATA_PER_JOB per job. Throws E_INVALID_INPUT
   * (digest or topic malformed), E_TOO_LARGE (too many), E_UNSUPPORTED (the node named no ledger).
   *
   * The digest and the topic become PUBLIC: the host receives the record in clear and posts it on
   * chain. Anyone who can guess the hashed bytes confirms the guess by hashing it, so never sign a
   * plain hash of input plaintext or of a result with few possible values: sign
   * `ctx.commit(bytes).digest` and return the salt in a sealed output
   * (docs/decisions/1769-app-public-fields.md).
   */
  signData(digest: Uint8Array, opts: SignDataOptions): Promise<SignedDataRecord>;
  /**
   * A salted commitment to `bytes` (any length), ready for `signData`: SHA-256(COMMIT_TAG || salt ||
   * bytes) with a fresh 32-byte salt drawn from `ctx.random` (so a re-run of the same job commits
   * the same way). The digest alone confirms no guess of `bytes`; return `salt` in an output so the
   * requester can open it (`verifyCommitment`). Throws E_INVALID_INPUT when `bytes` is not a Uint8Array.
   */
  commit(bytes: Uint8Array): Commitment;
}

export interface WorkloadResult {
  /** 1..MAX_APP_OUTPUTS outputs with distinct roles. */
  outputs: AppOutput[];
  /**
   * The work the job is paid for (0 <= workUnits < 2^64), committed in the Work Proof. PUBLIC: it
   * is emitted on chain and kept in the host's job record. Derive it only from what is public
   * already (the inputs' byte sizes) or use a constant; a count read from the plaintext (rows,
   * distinct IDs, matches) is published to everyone, the other parties of the job included.
   */
  workUnits: bigint;
  /** Optional summary (plain JSON data) sealed to the requester with the result. */
  report?: Record<string, unknown>;
}

/** A workload: one named entry point of an app. */
export type Workload = (ctx: WorkloadContext) => Promise<WorkloadResult>;

/** What a developer passes to `defineApp`. */
export interface AppDefinition {
  /** Lowercase ASCII, 1..64 characters ([a-z][a-z0-9_.-]*). */
  name: string;
  /** 1..32 characters of [0-9A-Za-z.+-] (semver recommended). */
  version: string;
  /** Workloads by name (each name lowercase ASCII like a role); at least one, at most MAX_APP_WORKLOADS. */
  workloads: Record<string, Workload>;
}

/** A checked app definition, as `defineApp` returns it (frozen). */
export interface FirnApp extends AppDefinition {
  readonly format: typeof APP_FORMAT;
}

/** What an image says about its app (`firn app build --json`, `describeApp`). */
export interface AppDescription {
  format: typeof APP_FORMAT;
  name: string;
  version: string;
  /** Workload names, sorted. */
  workloads: string[];
}

export const APP_FORMAT = 'firn/app/v1';

/** Domain tag of `ctx.commit`'s digest (UTF-8, 18 bytes). */
export const COMMIT_TAG = 'firn/app-commit/v1';
const COMMIT_TAG_BYTES = new TextEncoder().encode(COMMIT_TAG);

/**
 * The digest of a salted commitment: SHA-256(COMMIT_TAG || salt || bytes). `salt` must be 32
 * bytes (E_INVALID_INPUT otherwise); `bytes` any Uint8Array. What `ctx.commit` signs.
 */
export function commitmentDigest(salt: Uint8Array, bytes: Uint8Array): Uint8Array {
  if (!(salt instanceof Uint8Array) || salt.length !== 32)
    throw new InvalidInputError('a commitment salt is 32 bytes');
  if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('commit takes a Uint8Array');
  return new Uint8Array(createHash('sha256').update(COMMIT_TAG_BYTES).update(salt).update(bytes).digest());
}

/**
 * Open a commitment: true when `digest` (32 bytes, or 0x hex as in a SignedDataRecord) is
 * `commitmentDigest(salt, bytes)`. The requester runs it on the record's digest, the salt output
 * and the bytes it claims were committed. Throws E_INVALID_INPUT for a malformed digest or salt.
 */
export function verifyCommitment(digest: Uint8Array | Hex, salt: Uint8Array, bytes: Uint8Array): boolean {
  const want = typeof digest === 'string' ? hexBytes(digest, 'digest', 32) : digest;
  const got = commitmentDigest(salt, bytes);
  return want instanceof Uint8Array && want.length === 32 && timingSafeEqual(want, got);
}

export const MAX_APP_WORKLOADS = 64;
export const MAX_APP_OUTPUTS = 16;
export const MAX_SIGNED_DATA_PER_JOB = 16;
export const MAX_RANDOM_BYTES = 65536;
/** Largest progress event or result report, as JSON (bigints as decimal strings). */
export const MAX_APP_EVENT_BYTES = 64 * 1024;

/**
 * JSON text of a progress event or report (bigints as decimal strings), or E_JOB_FAILED when it
 * is not plain JSON data (a cycle, a function at the top) or is over MAX_APP_EVENT_BYTES.
 */
export function appEventJson(event: unknown, what = 'a progress event'): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(event, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    text = undefined;
  }
  if (typeof text !== 'string' || typeof event !== 'object' || event === null || Array.isArray(event))
    throw new FirnError('E_JOB_FAILED', `${what} must be a plain JSON object`);
  if (text.length > MAX_APP_EVENT_BYTES)
    throw new FirnError('E_JOB_FAILED', `${what} is over ${MAX_APP_EVENT_BYTES} bytes as JSON`);
  return text;
}
const VERSION_RE = /^[0-9A-Za-z.+-]{1,32}$/;

/**
 * Define an app. Checks the name, version and workload names (E_INVALID_INPUT naming the field)
 * and returns a frozen copy; the image serves exactly these workloads, and any other workload
 * name a job asks for is E_UNSUPPORTED.
 */
export function defineApp(def: AppDefinition): FirnApp {
  if (typeof def !== 'object' || def === null) throw new InvalidInputError('defineApp takes an object');
  const name = assertRole(def.name, 'app name');
  if (typeof def.version !== 'string' || !VERSION_RE.test(def.version))
    throw new InvalidInputError(`app version must match ${VERSION_RE.source}`);
  const entries = Object.entries(def.workloads ?? {});
  if (entries.length === 0 || entries.length > MAX_APP_WORKLOADS)
    throw new InvalidInputError(`an app defines 1..${MAX_APP_WORKLOADS} workloads`);
  const workloads: Record<string, Workload> = Object.create(null);
  for (const [k, w] of entries) {
    assertRole(k, 'workload name');
    if (typeof w !== 'function') throw new InvalidInputError(`workload ${k} must be a function`);
    workloads[k] = w;
  }
  return Object.freeze({
    format: APP_FORMAT,
    name,
    version: def.version,
    workloads: Object.freeze(workloads),
  });
}

/** The public description of an app: name, version and sorted workload names. */
export function describeApp(app: FirnApp): AppDescription {
  return {
    format: APP_FORMAT,
    name: app.name,
    version: app.version,
    workloads: Object.keys(app.workloads).sort(),
  };
}

/** Is `v` an app made by `defineApp` (checked by shape, so copies of this module agree)? */
export function isFirnApp(v: unknown): v is FirnApp {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { format?: unknown }).format === APP_FORMAT &&
    typeof (v as { workloads?: unknown }).workloads === 'object'
  );
}

/** What the framework gives a workload run; `createWorkloadContext` builds the app's context from it. */
export interface WorkloadRunContext {
  params: Record<string, unknown>;
  inputs: AppInput[];
  progress(event: Record<string, unknown>): void;
  now(): number;
  /** Absent where no enclave can sign (then `ctx.signData` throws E_UNSUPPORTED). */
  signData?: (digest: Uint8Array, opts: SignDataOptions) => Promise<SignedDataRecord>;
  /** Default: `randomSeed`'s stream when given, else node:crypto's CSPRNG via globalThis.crypto. */
  random?: (n: number) => Uint8Array;
  /**
   * 32-byte per-job seed the enclave derives from its key, the jobId and the workload hash
   * (docs/decisions/1080, "Randomness"): `ctx.random` is then `seededRandom(randomSeed)`, so a
   * re-run of the same job (a replay after an enclave restart) draws the same bytes.
   */
  randomSeed?: Uint8Array;
}

/**
 * A deterministic byte stream from a 32-byte seed: block i (32 bytes) is
 * HMAC-SHA256(seed, "firn/app-random/v1" || u64be(i)), and each call takes the next `n` bytes.
 * Equal seeds and equal call sequences give equal bytes; without the seed the stream is
 * indistinguishable from random (HMAC as a PRF). Throws E_INVALID_INPUT for a seed that is not 32 bytes.
 */
export function seededRandom(seed: Uint8Array): (n: number) => Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32)
    throw new InvalidInputError('a random seed is 32 bytes');
  const key = Uint8Array.from(seed);
  const tag = new TextEncoder().encode('firn/app-random/v1');
  let block = 0n;
  let spare = new Uint8Array(0);
  return (n) => {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      if (spare.length === 0) {
        const ctr = new Uint8Array(8);
        new DataView(ctr.buffer).setBigUint64(0, block++);
        spare = new Uint8Array(createHmac('sha256', key).update(tag).update(ctr).digest());
      }
      const take = Math.min(spare.length, n - at);
      out.set(spare.subarray(0, take), at);
      spare = spare.subarray(take);
      at += take;
    }
    return out;
  };
}

/** Build the context a workload sees (adds `input(role)`, checks `random` sizes). */
export function createWorkloadContext(run: WorkloadRunContext): WorkloadContext {
  const inputs = run.inputs;
  const draw = run.random ?? (run.randomSeed === undefined ? undefined : seededRandom(run.randomSeed));
  const random = (n: number): Uint8Array => {
    if (!Number.isSafeInteger(n) || n < 0 || n > MAX_RANDOM_BYTES)
      throw new InvalidInputError(`random(n) takes 0..${MAX_RANDOM_BYTES} bytes`);
    if (draw) return draw(n);
    return globalThis.crypto.getRandomValues(new Uint8Array(n));
  };
  return {
    params: run.params,
    inputs,
    input(role: string): Uint8Array {
      const hit = inputs.find((i) => i.role === role);
      if (hit === undefined)
        throw new FirnError(
          'E_INPUT_INVALID',
          `the workload needs an input with role "${String(role).slice(0, 64)}"; the job has ${
            inputs.length === 0 ? 'none' : inputs.map((i) => `"${i.role}"`).join(', ')
          }`,
        );
      return hit.bytes;
    },
    progress: (e) => run.progress(e),
    now: () => run.now(),
    random,
    commit(bytes: Uint8Array): Commitment {
      if (!(bytes instanceof Uint8Array)) throw new InvalidInputError('ctx.commit takes a Uint8Array');
      const salt = random(32);
      return { digest: commitmentDigest(salt, bytes), salt };
    },
    signData(digest, opts) {
      if (run.signData === undefined)
        return Promise.reject(new FirnError('E_UNSUPPORTED', 'signData is not available in this runtime'));
      return run.signData(digest, opts);
    },
  };
}

/** The framework's checks on a result (shared with the enclave): E_JOB_FAILED naming the defect. */
export function checkWorkloadResult(r: WorkloadResult): void {
  const fail = (m: string) => new FirnError('E_JOB_FAILED', m);
  if (typeof r !== 'object' || r === null || !Array.isArray(r.outputs))
    throw fail('a workload must return {outputs, workUnits}');
  if (r.outputs.length === 0 || r.outputs.length > MAX_APP_OUTPUTS)
    throw fail(`a workload must return 1..${MAX_APP_OUTPUTS} outputs`);
  const roles = new Set<string>();
  for (const o of r.outputs) {
    if (typeof o?.role !== 'string' || !/^[a-z][a-z0-9_.-]{0,63}$/.test(o.role))
      throw fail('every output needs a lowercase role ([a-z][a-z0-9_.-]*, at most 64 characters)');
    if (roles.has(o.role)) throw fail(`two outputs have the role "${o.role}"`);
    roles.add(o.role);
    if (!(o.bytes instanceof Uint8Array)) throw fail(`output "${o.role}" must be a Uint8Array`);
    if (typeof o.contentType !== 'string' || o.contentType.length === 0 || o.contentType.length > 255)
      throw fail(`output "${o.role}" needs a content type`);
  }
  if (typeof r.workUnits !== 'bigint' || r.workUnits < 0n || r.workUnits >= 1n << 64n)
    throw fail('workUnits must be a bigint in 0..2^64-1');
  if (r.report !== undefined) appEventJson(r.report, 'the report');
}
