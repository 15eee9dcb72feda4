import type { FirnClients } from '@firn/chain';
import { computeOutputCommitment, FirnError, type Hex } from '@firn/core';
import { artifactId } from '@firn/crypto';
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
 * Fetch a verified result's outputs (call verifyResultProof first): an inline output is decoded,
 * any other downloaded with GET /v1/artifacts/{id} capped at its listed size (the schema bounds
 * each at the enclave's largest sealed output and their total at the enclave's total). Each must
 * be exactly its listed size and hash to its id. Outputs are fetched one at a time, in order, and
 * the first bad one stops the rest.
 *
 * Throws E_ARTIFACT_TAMPERED naming the node and the output's role (details: endpoint, role) for
 * bytes that are not the listed size or id; E_TOO_LARGE when a download runs past its listed
 * size; the network errors of NodeApi.getArtifact.
 */
export async function fetchResultOutputs(api: NodeApi, result: NodeJobResult): Promise<FetchedOutput[]> {
  const out: FetchedOutput[] = [];
  for (const o of result.outputs) {
    const sealed =
      o.sealed !== undefined
        ? new Uint8Array(Buffer.from(o.sealed, 'base64'))
        : await api.getArtifact(o.artifactId, o.size);
    if (sealed.length !== o.size || artifactId(sealed) !== o.artifactId)
      throw new FirnError(
        'E_ARTIFACT_TAMPERED',
        `output ${o.role} from node ${api.endpoint} is not the artifact the proof commits to (${sealed.length === o.size ? 'it does not hash to its id' : `${sealed.length} bytes, listed as ${o.size}`})`,
        { details: { endpoint: api.endpoint, role: o.role } },
      );
    out.push({ role: o.role, artifactId: o.artifactId, contentType: o.contentType, sealed });
  }
  return out;
}
