import { FirnError, type Hex, MAX_ROLE_LENGTH, type WorkProofJson } from '@firn/core';
import { MAX_CONTENT_TYPE_BYTES, MAX_RECIPIENTS, MIN_CHUNK_SIZE } from '@firn/crypto';
import { z } from 'zod';

/**
 * Shapes of what a node's host answers a requester (docs/api.md), checked before any field is
 * used. The host is untrusted: every answer is parsed against its schema here, and a body that
 * does not fit fails with E_PARSE naming the node, the route and the first field at fault
 * (details: endpoint, route, field), never a TypeError from deep inside the caller. Arrays and
 * strings are bounded, so a hostile answer cannot make the requester loop or allocate beyond
 * what the node API may legitimately send. What the answer *means* (that outputs hash to their
 * ids, that the proof commits to them) is checked by the callers; these schemas only make it safe
 * to look.
 */

/**
 * The most outputs one job can have: the enclave refuses a workload that returns more
 * (packages/enclave/src/jobs/runJob.ts MAX_OUTPUTS). A result listing more is not from an
 * honest node.
 */
export const MAX_RESULT_OUTPUTS = 16;
/** The largest plaintext of one output the enclave seals (enclave MAX_OUTPUT_BYTES), bytes. */
export const MAX_RESULT_OUTPUT_PLAINTEXT_BYTES = 512 * 1024 * 1024;
/** The largest plaintext total of one job's outputs (enclave MAX_TOTAL_OUTPUT_BYTES), bytes. */
export const MAX_RESULT_TOTAL_PLAINTEXT_BYTES = 1024 * 1024 * 1024;

/** Bytes of a sealed artifact's header at most (fixed part, content type, MAX_RECIPIENTS wraps). */
const MAX_SEALED_HEADER_BYTES = 54 + MAX_CONTENT_TYPE_BYTES + 1 + MAX_RECIPIENTS * (32 + 32 + 48);
/** Per-chunk AEAD tag of the sealed artifact format (docs/artifact-format.md), bytes. */
const CHUNK_TAG_BYTES = 16;

/**
 * The largest sealed artifact a plaintext of `plaintextBytes` can become: header, plaintext, and
 * one 16-byte tag per chunk at the smallest chunk size (plus a final empty chunk). Used to cap
 * downloads of outputs at what an honest enclave could have written.
 */
export function maxSealedBytes(plaintextBytes: number): number {
  return (
    MAX_SEALED_HEADER_BYTES +
    plaintextBytes +
    (Math.ceil(plaintextBytes / MIN_CHUNK_SIZE) + 1) * CHUNK_TAG_BYTES
  );
}

/** The largest sealed output a node may list (and the requester will download), bytes. */
export const MAX_RESULT_OUTPUT_SEALED_BYTES = maxSealedBytes(MAX_RESULT_OUTPUT_PLAINTEXT_BYTES);
/** The largest sealed total of one job's outputs, bytes. */
export const MAX_RESULT_TOTAL_SEALED_BYTES =
  maxSealedBytes(MAX_RESULT_TOTAL_PLAINTEXT_BYTES) + (MAX_RESULT_OUTPUTS - 1) * MAX_SEALED_HEADER_BYTES;

/** Largest channel message (base64) a result or session answer may carry, characters. */
const MAX_BASE64_RESPONSE_CHARS = 24 * 1024 * 1024;
/**
 * Largest inline sealed output (base64) a node may put in a result: 8 MiB, what nodes before
 * decision 1744 inlined (nodes now inline 64 KiB per answer in all and list the rest for GET
 * /v1/artifacts/{id}; the cap stays at the older bound so those nodes' answers still parse).
 */
const MAX_INLINE_SEALED_CHARS = Math.ceil((8 * 1024 * 1024) / 3) * 4;

const hex = (bytes: number) =>
  z
    .string()
    .regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`), `must be ${bytes} bytes as 0x-prefixed hex`)
    .transform((s) => s.toLowerCase() as Hex);
const hex32 = hex(32);
const unixSeconds = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const u64Text = z.string().regex(/^(0|[1-9][0-9]{0,19})$/, 'must be a decimal integer');
const base64 = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const role = z
  .string()
  .min(1)
  .max(MAX_ROLE_LENGTH)
  .regex(/^[a-z][a-z0-9_.-]*$/, 'must be a role name (lowercase letters, digits, _ . -)');
const errorCode = z.string().regex(/^E_[A-Z0-9_]{1,48}$/, 'must be an E_ error code');

/** A Work Proof as the node relays it (core WorkProofJson); the signature is checked by verifyWorkProof. */
export const workProofJsonSchema = z.object({
  proof: z.object({
    jobId: hex32,
    enclaveId: hex32,
    measurement: hex32,
    workloadHash: hex32,
    inputCommitment: hex32,
    outputCommitment: hex32,
    startedAt: u64Text,
    finishedAt: u64Text,
    workUnits: u64Text,
  }),
  signature: hex(65),
  chainId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  jobMarket: hex(20),
  enclaveAddress: hex(20),
}) satisfies z.ZodType<WorkProofJson, unknown>;

/** One listed output of a job: role, sealed artifact id, content type, sealed size in bytes. */
const outputRef = z.object({
  role,
  artifactId: hex32,
  contentType: z.string().max(MAX_CONTENT_TYPE_BYTES),
  size: z.number().int().min(0).max(MAX_RESULT_OUTPUT_SEALED_BYTES),
});

/** GET /v1/jobs/{id}/result. At most MAX_RESULT_OUTPUTS outputs; `sealed` is the inline output (base64). */
export const nodeJobResultSchema = z.object({
  jobId: hex32,
  proof: workProofJsonSchema,
  /** The enclave's summary sealed on the job's channel (base64); a session's result has none. */
  response: base64(MAX_BASE64_RESPONSE_CHARS).optional(),
  outputs: z
    .array(outputRef.extend({ sealed: base64(MAX_INLINE_SEALED_CHARS).optional() }))
    .max(MAX_RESULT_OUTPUTS, `must list at most ${MAX_RESULT_OUTPUTS} outputs (the enclave's bound)`)
    .refine(
      (outs) => outs.reduce((n, o) => n + o.size, 0) <= MAX_RESULT_TOTAL_SEALED_BYTES,
      `must total at most ${MAX_RESULT_TOTAL_SEALED_BYTES} sealed bytes (the enclave's bound)`,
    ),
});

/** GET /v1/jobs/{id} and POST /v1/jobs. */
export const nodeJobRecordSchema = z.object({
  jobId: hex32,
  /** accepted, running, proving, proved, finalized, failed, ... (the node's own states). */
  status: z.string().regex(/^[a-z_]{1,32}$/, 'must be a job state name'),
  error: z.object({ code: errorCode, message: z.string().max(2000) }).optional(),
  outputs: z.array(outputRef).max(MAX_RESULT_OUTPUTS).optional(),
  proof: workProofJsonSchema.optional(),
  /** Input artifact ids the job named (the node takes at most 16). */
  inputs: z.array(hex32).max(16).optional(),
  /** When the node created and last changed its record (its own clock). */
  createdAt: unixSeconds.optional(),
  updatedAt: unixSeconds.optional(),
  /** Transactions the node sent for the job by purpose (claim, proof, finalize, fail, ...). */
  txs: z
    .record(z.string().regex(/^[a-zA-Z]{1,32}$/, 'must be a transaction purpose'), hex32)
    .refine((t) => Object.keys(t).length <= 16, 'must name at most 16 transactions')
    .optional(),
  requestDigest: hex32.optional(),
  /** Chain time (unix seconds) the claim lapses at, and the challenge window ends at. */
  claimExpiresAt: unixSeconds.optional(),
  challengeEndsAt: unixSeconds.optional(),
});

/** PUT /v1/artifacts. */
export const uploadAnswerSchema = z.object({
  id: hex32,
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** POST /v1/sessions. */
export const sessionOpenAnswerSchema = z.object({
  sessionId: hex32,
  salt: hex32,
  expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  response: base64(MAX_BASE64_RESPONSE_CHARS),
  accessToken: z
    .string()
    .max(512)
    .regex(/^[A-Za-z0-9_-]+$/, 'must be base64url')
    .optional(),
  direct: z.object({ port: z.number().int().min(1).max(65535), token: hex32 }).optional(),
});

/** DELETE /v1/sessions/{id}. */
export const sessionCloseAnswerSchema = z.object({
  proof: workProofJsonSchema,
  requests: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  proofTx: hex32.optional(),
});

/**
 * A `progress` event of GET /v1/jobs/{id}/events (decision 1040): `seq` from 0, `message` the
 * channel ciphertext (base64; the stream's 4 MiB buffer bounds it).
 */
export const progressEventSchema = z.object({
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  message: z.string(),
});

/** The `end` event: the job's final state, how many events it produced, the host's error code. */
export const endEventSchema = z.object({
  status: z.string().min(1).max(32),
  events: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  error: z.object({ code: errorCode, message: z.string().max(2000).optional() }).optional(),
});

/** A node's typed refusal body ({error: {code, message}}), as far as the requester uses it. */
export const nodeErrorBodySchema = z.object({
  error: z.object({ code: errorCode, message: z.string().max(2000).optional() }),
});

/**
 * Parse a node's answer `value` to `route` with `schema`. Throws FirnError E_PARSE naming the
 * node (`endpoint`), the route and the first field at fault, with details {endpoint, route,
 * field}; the offending value itself is never echoed.
 */
export function parseNodeAnswer<S extends z.ZodType>(
  schema: S,
  value: unknown,
  endpoint: string,
  route: string,
): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  // A path segment can be a key the node chose (a record's): only schema-like names and indices
  // are shown, and a key that failed its own check never is.
  const path = (issue?.path ?? []).map((p, i, all) =>
    typeof p === 'number' ||
    (typeof p === 'string' &&
      /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(p) &&
      !(issue?.code === 'invalid_key' && i === all.length - 1))
      ? String(p)
      : '(key)',
  );
  const field = path.length > 0 ? path.join('.') : '(body)';
  const why = (issue?.message ?? 'malformed').slice(0, 200);
  throw new FirnError(
    'E_PARSE',
    `node ${endpoint} answered ${route} with a malformed body: ${field} ${why}`,
    { details: { endpoint, route, field: field.slice(0, 120) } },
  );
}
