import { bytesToHex, type Hex, hexBytes, utf8 } from './bytes.ts';
import { InvalidInputError } from './errors.ts';
import { canonicalize } from './evidence.ts';
import { taggedSha256 } from './hash.ts';
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
    throw new InvalidInputError(`${what} must match ${ROLE_RE.source} and be at most ${MAX_ROLE_LENGTH} characters`);
  return role;
}

/** Canonical JSON (sorted keys, no whitespace) of job params; bigint is refused, not guessed. */
export function canonicalParamsJson(params: Record<string, unknown>): string {
  return JSON.stringify(canonicalize(params), (_k, v) => {
    if (typeof v === 'bigint') throw new InvalidInputError('params must not contain bigint values');
    if (typeof v === 'number' && !Number.isFinite(v)) throw new InvalidInputError('params must not contain NaN or infinities');
    return v;
  });
}

function refFields(refs: readonly ArtifactRef[], what: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  refs.forEach((r, i) => {
    out.push(utf8(assertRole(r.role, `${what}[${i}].role`)), hexBytes(r.artifactId, `${what}[${i}].artifactId`, 32));
  });
  return out;
}

/**
 * workloadHash = taggedSha256(TAGS.workloadHash, kind, canonical params JSON, role1, id1, role2,
 * id2, ...): what the job is, independent of who runs it.
 */
export function computeWorkloadHash(kind: string, params: Record<string, unknown>, inputs: readonly ArtifactRef[]): Hex {
  return bytesToHex(
    taggedSha256(TAGS.workloadHash, utf8(assertRole(kind, 'kind')), utf8(canonicalParamsJson(params)), ...refFields(inputs, 'inputs')),
  );
}

/** inputCommitment = taggedSha256(TAGS.inputCommitment, id1, id2, ...) over the input artifact ids in order. */
export function computeInputCommitment(artifactIds: readonly Hex[]): Hex {
  return bytesToHex(taggedSha256(TAGS.inputCommitment, ...artifactIds.map((id, i) => hexBytes(id, `inputs[${i}]`, 32))));
}

/** outputCommitment = taggedSha256(TAGS.outputCommitment, role1, id1, ...) over the sealed outputs in order. */
export function computeOutputCommitment(outputs: readonly ArtifactRef[]): Hex {
  return bytesToHex(taggedSha256(TAGS.outputCommitment, ...refFields(outputs, 'outputs')));
}
