import { getJob, JobStatus } from '@firn/chain';
import { computeOutputCommitment, FirnError, type Hex, type WorkProofJson } from '@firn/core';
import { artifactId, type CreateGrantParams } from '@firn/crypto';
import { assertStillEligible } from './attestNode.ts';
import { buildJobRequest, jobCommitments } from './buildJobRequest.ts';
import {
  connectToNode,
  type MarketOptions,
  postJobFor,
  reclaimIfPossible,
  uploadSealed,
} from './marketJob.ts';
import type { NodeJobResult } from './nodeApi.ts';
import { openOutput, type SealedInput, sealInput } from './sealInput.ts';
import { verifyWorkProof } from './verifyWorkProof.ts';

export interface RunJobOptions extends MarketOptions {
  kind: 'inference' | 'training';
  /** Plaintext inputs, sealed here; or already sealed ones (with their data key), e.g. for a retry. */
  inputs: (
    | { role: string; bytes: Uint8Array; contentType: string }
    | { role: string; sealed: SealedInput }
  )[];
  params: Record<string, unknown>;
  onProgress?: (event: Record<string, unknown>) => void;
  /** Fault tests only: alter grant terms before they are signed. */
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
  /** Called once the job is posted (e.g. to log its id). */
  onPosted?: (jobId: Hex) => void;
  /** Interval between attempts to fetch a proved job's result the node does not serve, ms (default 2000). */
  resultRetryMs?: number;
}

export interface RunJobResult {
  jobId: Hex;
  node: { endpoint: string; enclaveId: Hex; enclaveAddress: Hex; measurement: Hex };
  outputs: { role: string; contentType: string; bytes: Uint8Array }[];
  proof: WorkProofJson;
  proofCheck: { ok: boolean; reasons: string[] };
  /** Output artifact ids, in order. */
  outputIds: Hex[];
  /** The enclave's own summary (opened from the channel response). */
  summary: Record<string, unknown>;
}

/** A job that failed in the enclave: the node failed it on chain and the escrow was reclaimed. */
export class JobFailedError extends FirnError {
  override readonly name = 'JobFailedError';
  constructor(
    code: FirnError['code'],
    message: string,
    readonly jobId: Hex,
    readonly reclaimed: boolean,
  ) {
    super(code, message, { details: { jobId, reclaimed } });
  }
}

/**
 * Fetch a proved job's result. A node that does not serve it (or serves outputs that do not hash
 * to their ids) is retried until it does, or until the job leaves Proved: verifiers check the same
 * result and dispute a withheld one (reason 19, E_RESULT_UNAVAILABLE; docs/decisions/0830), so a
 * Slashed job is reclaimed here, escrow and slashed stake, and reported as JobFailedError
 * E_RESULT_UNAVAILABLE with `reclaimed`. Also reported, without a refund, when the challenge window
 * ends with the job still Proved (the verifiers were served: see the decision's remaining gap).
 */
async function awaitResult(
  m: Awaited<ReturnType<typeof connectToNode>>,
  jobId: Hex,
  opts: Pick<RunJobOptions, 'resultRetryMs' | 'onProgress'>,
): Promise<NodeJobResult> {
  let reason = '';
  for (;;) {
    try {
      const r = await m.api.getResult(jobId);
      // Inline outputs must be the bytes their ids name; fetched ones are checked by the caller.
      if (
        r.outputs.every(
          (o) =>
            o.sealed === undefined ||
            artifactId(new Uint8Array(Buffer.from(o.sealed, 'base64'))) === o.artifactId.toLowerCase(),
        )
      )
        return r;
      reason = 'an output does not hash to its id';
    } catch (e) {
      reason = (e as Error).message;
    }
    const job = await getJob(m.clients, jobId);
    // The latest block's time may lag where blocks are mined only on transactions (anvil).
    const now = BigInt(Math.max(Number((await m.clients.public.getBlock()).timestamp), m.now()));
    if (job.status === JobStatus.Slashed) {
      const reclaimed = await reclaimIfPossible(m.clients, jobId).catch(() => false);
      throw new JobFailedError(
        'E_RESULT_UNAVAILABLE',
        `the node proved the job but did not serve its result (${reason}); verifiers disputed it and the job was slashed`,
        jobId,
        reclaimed,
      );
    }
    if (job.status !== JobStatus.Proved || now >= job.challengeEndsAt)
      throw new JobFailedError(
        'E_RESULT_UNAVAILABLE',
        `the node proved the job but did not serve its result (${reason}); the job is ${JobStatus[job.status]}`,
        jobId,
        false,
      );
    opts.onProgress?.({ stage: 'awaiting-result', reason });
    await new Promise((res) => setTimeout(res, opts.resultRetryMs ?? 2000));
  }
}

/**
 * Run one confidential job through the market: attest a node, seal and upload the inputs, post
 * the job with escrow, grant the inputs to that enclave for that job, send the encrypted request,
 * follow the encrypted progress, open the sealed outputs and verify the Work Proof off chain. A
 * job the enclave refuses rejects with its typed error after the escrow was reclaimed.
 */
export async function runJob(opts: RunJobOptions): Promise<RunJobResult> {
  const m = await connectToNode(opts);
  const { clients, node, api, kem, now, deadlineSeconds } = m;

  const sealed: (SealedInput & { role: string })[] = [];
  for (const i of opts.inputs) {
    const s = 'sealed' in i ? i.sealed : await sealInput(i.bytes, i.contentType, kem.publicKey);
    await uploadSealed(api, s, 'input');
    sealed.push({ ...s, role: i.role });
  }
  const refs = sealed.map((s) => ({ role: s.role, artifactId: s.artifactId }));
  const { workloadHash, inputCommitment } = jobCommitments(opts.kind, opts.params, refs);
  const jobId = await postJobFor(m, opts, { workloadHash, inputCommitment });
  const chainTime = Number((await clients.public.getBlock()).timestamp);
  opts.onPosted?.(jobId);

  const built = await buildJobRequest({
    jobId,
    kind: opts.kind,
    inputs: sealed.map((s) => ({ role: s.role, artifactId: s.artifactId, dataKey: s.dataKey })),
    params: opts.params,
    requesterKey: opts.requesterKey,
    enclave: node,
    resultRecipient: kem.publicKey,
    domain: { chainId: opts.deployment.chainId, jobMarket: opts.deployment.jobMarket },
    grantExpiresAt: Math.max(now(), chainTime) + deadlineSeconds,
    // The chain time the grants are made at: the enclave's clock never goes below it.
    grantIssuedAt: chainTime,
    ...(opts.mutateGrant ? { mutateGrant: opts.mutateGrant } : {}),
  });
  const reclaim = () => reclaimIfPossible(clients, jobId);
  try {
    // The grants (data keys wrapped to the enclave) leave with this request: re-check the node's
    // registration and allow-listed measurement at a fresh block first.
    await assertStillEligible(m.view, node, opts.policy);
    await api.submitJob({ ...built.body, inputs: refs.map((r) => r.artifactId) });
  } catch (e) {
    const reclaimed = await reclaim().catch(() => false);
    const err = e as FirnError;
    throw new JobFailedError(err.code ?? 'E_UNAVAILABLE', err.message, jobId, reclaimed);
  }
  // The enclave tells the host only an error code; the full message arrives sealed on the channel.
  let sealedError: { code: FirnError['code']; message: string } | undefined;
  const end = await api.followEvents(jobId, async (message) => {
    const ev = JSON.parse(new TextDecoder().decode(await built.channel.openEvent(message))) as Record<
      string,
      unknown
    >;
    const err =
      ev.stage === 'failed' ? (ev.error as { code?: unknown; message?: unknown } | undefined) : undefined;
    if (typeof err?.code === 'string' && err.code.startsWith('E_') && typeof err.message === 'string')
      sealedError = { code: err.code as FirnError['code'], message: err.message };
    opts.onProgress?.(ev);
  });
  if (end.status !== 'proved') {
    const reclaimed = await reclaim().catch(() => false);
    throw new JobFailedError(
      sealedError?.code ?? end.error?.code ?? 'E_JOB_FAILED',
      sealedError?.message ?? end.error?.message ?? 'job failed',
      jobId,
      reclaimed,
    );
  }

  const result = await awaitResult(m, jobId, opts);
  const outputs: RunJobResult['outputs'] = [];
  const outputIds: Hex[] = [];
  for (const o of result.outputs) {
    const bytes =
      o.sealed !== undefined
        ? new Uint8Array(Buffer.from(o.sealed, 'base64'))
        : await api.getArtifact(o.artifactId);
    if (artifactId(bytes) !== o.artifactId.toLowerCase())
      throw new FirnError('E_ARTIFACT_TAMPERED', 'output does not hash to its id');
    const opened = await openOutput(bytes, kem.privateKey);
    outputs.push({ role: o.role, contentType: opened.contentType, bytes: opened.bytes });
    outputIds.push(o.artifactId.toLowerCase() as Hex);
  }
  const summary = JSON.parse(
    new TextDecoder().decode(await built.channel.openResponse(result.response)),
  ) as Record<string, unknown>;
  const reported = (summary.outputs as { role: string; artifactId: string }[] | undefined) ?? [];
  const check = await verifyWorkProof(clients, result.proof, {
    jobId,
    workloadHash,
    inputCommitment,
    outputCommitment: computeOutputCommitment(
      result.outputs.map((o) => ({ role: o.role, artifactId: o.artifactId })),
    ),
  });
  // The enclave's own list (inside the channel) must name the same outputs the host handed over.
  if (
    reported.length !== outputIds.length ||
    reported.some((r, i) => r.artifactId.toLowerCase() !== outputIds[i])
  )
    check.reasons.push('outputs differ from the enclave’s own summary');
  return {
    jobId,
    node: {
      endpoint: node.endpoint,
      enclaveId: node.enclaveId,
      enclaveAddress: node.enclaveAddress,
      measurement: node.measurement,
    },
    outputs,
    proof: result.proof,
    proofCheck: { ok: check.reasons.length === 0, reasons: check.reasons },
    outputIds,
    summary,
  };
}
