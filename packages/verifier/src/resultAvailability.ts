import { type FirnClients, getNode } from '@firn/chain';
import {
  computeOutputCommitment,
  FirnError,
  type Hex,
  hexBytes,
  readBodyCapped,
  readBodyStreamed,
} from '@firn/core';
import { fetchFromNode } from '@firn/core/fetchFromNode';
import { ArtifactHasher, artifactId, sessionTranscriptCommitment } from '@firn/crypto';

/**
 * Cap on the JSON of GET /v1/jobs/{id}/result. What an honest node sends is under 400 KiB: inline
 * sealed outputs at most 64 KiB in all since decision 1744 (87 KiB as base64), the channel
 * response (the enclave's summary: a report of at most 64 Ki characters as JSON, so 192 KiB of
 * UTF-8 at worst, 16 outputs and 16 signed-data records, about 290 KiB as sealed base64), the
 * listing and the proof. A node from before 1744 that inlines more is refused (E_TOO_LARGE).
 */
export const MAX_RESULT_JSON_BYTES = 1024 * 1024;
/** Cap on the outputs one result may list. */
export const MAX_RESULT_OUTPUTS = 64;
/** Default cap on one output artifact a verifier downloads to hash (bytes). */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024 * 1024;
/**
 * Default cap on all the output bytes one result check downloads, bytes: what an enclave may
 * write for one job (1 GiB of plaintext, MAX_TOTAL_OUTPUT_BYTES) sealed, with room for the
 * chunk tags and headers.
 */
export const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024 * 1024 + 64 * 1024 * 1024;

const HEX32 = /^0x[0-9a-fA-F]{64}$/;
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export interface ResultCheck {
  /** True when the node served every sealed output the proof commits to, each hashing to its id. */
  available: boolean;
  /** Why not (for logs; never contains output bytes, which are ciphertext anyway). */
  reason?: string;
  /** 'job' (sealed outputs checked) or 'session' (transcript opening checked). */
  kind?: 'job' | 'session';
}

export interface ResultCheckOptions {
  /** Per request timeout, the body's reading included, ms (default 20 000). */
  timeoutMs?: number;
  /** Largest output artifact fetched and hashed, bytes (default 1 GiB). */
  maxOutputBytes?: number;
  /** Largest sum of the output artifacts one check fetches, bytes (default DEFAULT_MAX_RESULT_BYTES). */
  maxResultBytes?: number;
  /**
   * Let the node's endpoint be a loopback, private or other forbidden address (default false:
   * such an endpoint gets no request and the result is unavailable). Devnets and tests only.
   */
  allowPrivateEndpoints?: boolean;
}

/**
 * Data availability of one Proved job (docs/decisions/0830-result-availability.md): fetch
 * GET {endpoint}/v1/jobs/{jobId}/result from the node that proved it (the endpoint its Enclave ID
 * registered) and check that what it serves is what the Work Proof committed to:
 * - a batch job: the listed (role, artifactId) pairs give `computeOutputCommitment` equal to the
 *   on-chain outputCommitment, and every output's sealed bytes (inline, else GET
 *   /v1/artifacts/{id}) hash to its artifact id (`artifactId`, SHA-256 of the sealed bytes);
 * - an inference session (answers went to the requester in-band): the served transcript opening
 *   (salt, count, requestsHash, responsesHash) gives `sessionTranscriptCommitment` equal to the
 *   on-chain outputCommitment.
 * Everything fetched is ciphertext or hashes, and every read is size-capped; every request goes
 * through fetchFromNode (no redirect followed, no forbidden destination, docs/decisions/1832), and
 * an output is hashed as it arrives, never held whole (asked uncompressed: an answer that names a
 * content-encoding is refused unread). Throws only when the
 * chain read of the node fails (the verifier's own RPC); never for what the node does: a refusal, a timeout, malformed JSON, a size cap or a mismatch is `available: false`
 * with the reason. It cannot tell whether the requester itself was served (see the decision).
 */
export async function checkResultAvailable(
  clients: FirnClients,
  job: { jobId: Hex; enclaveId: Hex; outputCommitment: Hex },
  opts: ResultCheckOptions = {},
): Promise<ResultCheck> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  // A chain read that fails is this verifier's problem, not the node's: it throws (the caller retries).
  const endpoint = (await getNode(clients, job.enclaveId)).endpoint;
  if (!URL.canParse(endpoint) || !['http:', 'https:'].includes(new URL(endpoint).protocol))
    return { available: false, reason: 'the node has no usable endpoint on chain' };
  const url = (path: string) => new URL(path, endpoint.endsWith('/') ? endpoint : `${endpoint}/`).href;
  const fetchOpts = (what: string) => ({
    timeoutMs,
    what,
    identity: true,
    allowPrivateEndpoints: opts.allowPrivateEndpoints === true,
  });
  try {
    const res = await fetchFromNode(url(`v1/jobs/${job.jobId}/result`), {}, fetchOpts('the job result'));
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return { available: false, reason: `the node answered ${res.status} for the result` };
    }
    const body = await readBodyCapped(res, MAX_RESULT_JSON_BYTES, 'job result');
    let r: unknown;
    try {
      r = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      return { available: false, reason: 'the result is not JSON' };
    }
    if (typeof r !== 'object' || r === null)
      return { available: false, reason: 'the result is not an object' };
    const o = r as { session?: unknown; outputs?: unknown };
    if (o.session !== undefined) {
      const s = o.session as {
        salt?: unknown;
        count?: unknown;
        requestsHash?: unknown;
        responsesHash?: unknown;
      };
      if (
        typeof s !== 'object' ||
        s === null ||
        typeof s.salt !== 'string' ||
        !HEX32.test(s.salt) ||
        typeof s.count !== 'string' ||
        !/^[0-9]{1,20}$/.test(s.count) ||
        typeof s.requestsHash !== 'string' ||
        !HEX32.test(s.requestsHash) ||
        typeof s.responsesHash !== 'string' ||
        !HEX32.test(s.responsesHash)
      )
        return { available: false, reason: 'the session opening is malformed', kind: 'session' };
      const count = BigInt(s.count);
      if (count >= 1n << 64n)
        return { available: false, reason: 'the session count is out of range', kind: 'session' };
      const c = sessionTranscriptCommitment(job.jobId, hexBytes(s.salt as Hex, 'salt', 32), {
        count,
        requestsHash: hexBytes(s.requestsHash as Hex, 'requestsHash', 32),
        responsesHash: hexBytes(s.responsesHash as Hex, 'responsesHash', 32),
      });
      return same(c, job.outputCommitment)
        ? { available: true, kind: 'session' }
        : {
            available: false,
            reason: 'the session opening does not match the outputCommitment',
            kind: 'session',
          };
    }
    if (!Array.isArray(o.outputs) || o.outputs.length > MAX_RESULT_OUTPUTS)
      return { available: false, reason: 'the result lists no valid outputs', kind: 'job' };
    const refs: { role: string; artifactId: Hex; sealed?: string }[] = [];
    for (const x of o.outputs as unknown[]) {
      const e = x as { role?: unknown; artifactId?: unknown; sealed?: unknown };
      if (
        typeof e !== 'object' ||
        e === null ||
        typeof e.role !== 'string' ||
        typeof e.artifactId !== 'string' ||
        !HEX32.test(e.artifactId) ||
        (e.sealed !== undefined && typeof e.sealed !== 'string')
      )
        return { available: false, reason: 'an output entry is malformed', kind: 'job' };
      refs.push({
        role: e.role,
        artifactId: e.artifactId as Hex,
        ...(typeof e.sealed === 'string' ? { sealed: e.sealed } : {}),
      });
    }
    let commitment: Hex;
    try {
      commitment = computeOutputCommitment(refs.map((x) => ({ role: x.role, artifactId: x.artifactId })));
    } catch {
      return { available: false, reason: 'an output role or id is invalid', kind: 'job' };
    }
    if (!same(commitment, job.outputCommitment))
      return {
        available: false,
        reason: 'the listed outputs do not match the outputCommitment',
        kind: 'job',
      };
    const maxResultBytes = opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
    let fetched = 0;
    for (const x of refs) {
      let id: Hex;
      if (x.sealed !== undefined) id = artifactId(new Uint8Array(Buffer.from(x.sealed, 'base64')));
      else {
        const a = await fetchFromNode(url(`v1/artifacts/${x.artifactId}`), {}, fetchOpts('an output'));
        if (!a.ok) {
          await a.body?.cancel().catch(() => undefined);
          return { available: false, reason: `the node answered ${a.status} for an output`, kind: 'job' };
        }
        // Hashed as it arrives: an output is never held whole, whatever its size.
        const hasher = new ArtifactHasher();
        const cap = Math.min(opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES, maxResultBytes - fetched);
        fetched += await readBodyStreamed(a, cap, 'output artifact', (c) => hasher.update(c));
        id = hasher.digest();
      }
      if (!same(id, x.artifactId))
        return { available: false, reason: 'an output does not hash to its id', kind: 'job' };
    }
    return { available: true, kind: 'job' };
  } catch (e) {
    if (e instanceof FirnError && e.code === 'E_ENDPOINT_FORBIDDEN')
      return {
        available: false,
        reason: `the node's endpoint gets no request (E_ENDPOINT_FORBIDDEN): ${e.message}`,
      };
    // The node's URL and status or the network's code, never what the node sent (for logs).
    const why = e instanceof FirnError ? `${e.code}: ${e.message.slice(0, 300)}` : (e as Error).name;
    return { available: false, reason: `fetching the result failed (${why})` };
  }
}
