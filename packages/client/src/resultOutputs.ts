import type { FirnClients } from '@firn/chain';
import { computeOutputCommitment, FirnError, type Hex } from '@firn/core';
import { artifactId } from '@firn/crypto';
import { MAX_RESULT_OUTPUT_SEALED_BYTES } from './nodeAnswers.ts';
import type { NodeApi, NodeJobResult } from './nodeApi.ts';
import { type ProofCheck, type ProofExpectations, verifyWorkProof } from './verifyWorkProof.ts';

/** One output of a proved job, fetched and checked: its bytes hash to the id the proof commits to. */
export interface FetchedOutput {
  role: string;
  /** Lower-case hex. */
  artifactId: Hex;
  /** The content type the node listed (the opened artifact's own header is authoritative). */
  contentType: string;
  /** The sealed artifact, exactly the listed size. */
  sealed: Uint8Array;
}

/**
 * Verify a node's result *before* anything it lists is downloaded: the Work Proof (signature by
 * the registered enclave address, node Active, measurement registered and allow-listed, domain,
 * the job's on-chain commitments; verifyWorkProof) and that its outputCommitment is the
 * commitment of exactly the (role, artifact id) list the node claims, in order. `extraReasons` are
 * the caller's own findings (e.g. the enclave's sealed summary naming other outputs); any one of
 * them, or of the proof's, refuses the result.
 *
 * Proves: the listed outputs are the ones the attested enclave committed to for this job, so
 * fetching them downloads at most what the proof binds (each download is then size-capped by the
 * listed size and checked against its id, fetchResultOutputs). Does not prove: that the node will
 * serve them, nor anything about the computation beyond the enclave code's guarantees.
 *
 * Throws FirnError E_PROOF_INVALID naming the node (details: endpoint, jobId) with every reason.
 */
export async function verifyResultProof(
  clients: FirnClients,
  endpoint: string,
  result: NodeJobResult,
  expected: Omit<ProofExpectations, 'outputCommitment'> & { jobId: Hex },
  extraReasons: readonly string[] = [],
): Promise<ProofCheck> {
  const check = await verifyWorkProof(clients, result.proof, {
    ...expected,
    outputCommitment: computeOutputCommitment(
      result.outputs.map((o) => ({ role: o.role, artifactId: o.artifactId })),
    ),
  });
  const reasons = [...check.reasons, ...extraReasons];
  if (reasons.length > 0)
    throw new FirnError(
      'E_PROOF_INVALID',
      `the Work Proof from node ${endpoint} does not verify for the outputs it lists (nothing was downloaded): ${reasons.join('; ')}`,
      { details: { endpoint, jobId: expected.jobId } },
    );
  return { ...check, ok: true, reasons: [] };
}

/**
 * The sealed size of each output as the enclave's own summary gives it (opened from the channel
 * response, sealed to this requester; `outputs[i].size`, bytes, added by decision 1600), in the
 * summary's order. An entry is undefined where the summary gives no whole number within
 * MAX_RESULT_OUTPUT_SEALED_BYTES (an enclave image from before decision 1600): that output is
 * then capped at the host's listed size, as before.
 */
export function summaryOutputSizes(summary: Record<string, unknown>): (number | undefined)[] {
  const listed = Array.isArray(summary.outputs) ? (summary.outputs as unknown[]) : [];
  return listed.map((x) => {
    const size = (x as { size?: unknown } | null)?.size;
    return typeof size === 'number' &&
      Number.isSafeInteger(size) &&
      size >= 0 &&
      size <= MAX_RESULT_OUTPUT_SEALED_BYTES
      ? size
      : undefined;
  });
}

/**
 * Fetch a verified result's outputs (call verifyResultProof first): an inline output is decoded,
 * any other downloaded with GET /v1/artifacts/{id}. Each download is capped at the output's sealed
 * size: the one the enclave's sealed summary gives (`sealedSizes[i]`, summaryOutputSizes) where
 * the caller has it, else the host's listed size (the schema bounds it at the enclave's largest
 * sealed output, ~514 MiB; `firn job result` has no channel to open the summary with). A body
 * that runs past the cap is cut there, at most one read chunk later, and refused. Each output must
 * be exactly its size and hash to its id. Outputs are fetched one at a time, in order, and the
 * first bad one stops the rest.
 *
 * Throws E_ARTIFACT_TAMPERED naming the node and the output's role (details: endpoint, role,
 * artifactId) for bytes that are not the size or id, or a listed size other than the sealed one
 * (nothing downloaded); E_TOO_LARGE naming the node URL and the artifact id (details: endpoint,
 * role, artifactId, size: the bytes read when cut, limit) when a download runs past its size; the
 * network errors of NodeApi.getArtifact.
 */
export async function fetchResultOutputs(
  api: NodeApi,
  result: NodeJobResult,
  sealedSizes: readonly (number | undefined)[] = [],
): Promise<FetchedOutput[]> {
  const out: FetchedOutput[] = [];
  for (const [i, o] of result.outputs.entries()) {
    const sealedSize = sealedSizes[i];
    const size = sealedSize ?? o.size;
    const details = { endpoint: api.endpoint, role: o.role, artifactId: o.artifactId };
    if (size !== o.size)
      throw new FirnError(
        'E_ARTIFACT_TAMPERED',
        `node ${api.endpoint} lists output ${o.role} (artifact ${o.artifactId}) as ${o.size} bytes; the enclave sealed ${size} (nothing was downloaded)`,
        { details },
      );
    const sealed =
      o.sealed !== undefined
        ? new Uint8Array(Buffer.from(o.sealed, 'base64'))
        : await api.getArtifact(o.artifactId, size).catch((e: unknown) => {
            if (!(e instanceof FirnError && e.code === 'E_TOO_LARGE')) throw e;
            const read = (e.details as { size?: number } | undefined)?.size;
            throw new FirnError(
              'E_TOO_LARGE',
              `node ${api.endpoint} served more than the ${size} bytes ${sealedSize === undefined ? 'it listed' : 'the enclave sealed'} for output ${o.role} (artifact ${o.artifactId}): the download was cut off after ${read ?? 'about that many'} bytes and refused`,
              {
                cause: e,
                details: { ...details, ...(read === undefined ? {} : { size: read }), limit: size },
              },
            );
          });
    if (sealed.length !== size || artifactId(sealed) !== o.artifactId)
      throw new FirnError(
        'E_ARTIFACT_TAMPERED',
        `output ${o.role} (artifact ${o.artifactId}) from node ${api.endpoint} is not the artifact the proof commits to (${sealed.length === size ? 'it does not hash to its id' : `${sealed.length} bytes, ${sealedSize === undefined ? 'listed as' : 'sealed as'} ${size}`})`,
        { details },
      );
    out.push({ role: o.role, artifactId: o.artifactId, contentType: o.contentType, sealed });
  }
  return out;
}
