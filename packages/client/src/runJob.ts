import type { AttestationPolicy } from '@firn/attestation';
import { createFirnClients, type FirnDeployment, getJob, JobStatus, postJob, reclaimJob } from '@firn/chain';
import {
  computeOutputCommitment,
  FirnError,
  type Hex,
  type TeeTypeName,
  TEE_TYPES,
  type WorkProofJson,
} from '@firn/core';
import { artifactId, type CreateGrantParams, generateKemKeyPair } from '@firn/crypto';
import { attestNode } from './attestNode.ts';
import { buildJobRequest, jobCommitments } from './buildJobRequest.ts';
import { NodeApi } from './nodeApi.ts';
import { openOutput, type SealedInput, sealInput } from './sealInput.ts';
import { verifyWorkProof } from './verifyWorkProof.ts';

export interface RunJobOptions {
  rpcUrl: string;
  deployment: FirnDeployment;
  /** Pays the escrow and signs the grants. */
  requesterKey: Hex;
  /** Generated when absent. */
  requesterKem?: { privateKey: Uint8Array; publicKey: Uint8Array };
  /** Endpoint; else the first Active node of the registry. */
  node?: string;
  policy: AttestationPolicy;
  roots?: Partial<Record<TeeTypeName, Uint8Array[]>>;
  kind: 'inference' | 'training';
  /** Plaintext inputs, sealed here; or already sealed ones (with their data key), e.g. for a retry. */
  inputs: (
    | { role: string; bytes: Uint8Array; contentType: string }
    | { role: string; sealed: SealedInput }
  )[];
  params: Record<string, unknown>;
  escrow: bigint;
  deadlineSeconds?: number;
  claimTimeoutSeconds?: number;
  onProgress?: (event: Record<string, unknown>) => void;
  /** Unix seconds (evidence checks and grant expiry). */
  now?: () => number;
  /** Fault tests only: alter grant terms before they are signed. */
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
  /** Called once the job is posted (e.g. to log its id). */
  onPosted?: (jobId: Hex) => void;
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
 * Run one confidential job through the market: attest a node, seal and upload the inputs, post
 * the job with escrow, grant the inputs to that enclave for that job, send the encrypted request,
 * follow the encrypted progress, open the sealed outputs and verify the Work Proof off chain. A
 * job the enclave refuses rejects with its typed error after the escrow was reclaimed.
 */
export async function runJob(opts: RunJobOptions): Promise<RunJobResult> {
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const clients = createFirnClients(opts.rpcUrl, opts.requesterKey, opts.deployment, {
    pollingIntervalMs: 100,
  });
  const node = await attestNode(clients, {
    policy: opts.policy,
    now: now(),
    ...(opts.roots === undefined ? {} : { roots: opts.roots }),
    ...(opts.node === undefined ? {} : { node: opts.node }),
  });
  const api = new NodeApi(node.endpoint);
  const kem = opts.requesterKem ?? (await generateKemKeyPair());

  const sealed: (SealedInput & { role: string })[] = [];
  for (const i of opts.inputs) {
    const s = 'sealed' in i ? i.sealed : await sealInput(i.bytes, i.contentType, kem.publicKey);
    const up = await api.uploadArtifact(s.sealed);
    // Content addressing: the host must name the bytes we sent by their hash, nothing else.
    if (up.id.toLowerCase() !== s.artifactId.toLowerCase())
      throw new FirnError('E_ARTIFACT_TAMPERED', 'node stored the input under another id');
    sealed.push({ ...s, role: i.role });
  }
  const refs = sealed.map((s) => ({ role: s.role, artifactId: s.artifactId }));
  const { workloadHash, inputCommitment } = jobCommitments(opts.kind, opts.params, refs);
  const block = await clients.public.getBlock();
  const chainNow = Number(block.timestamp);
  const deadlineSeconds = opts.deadlineSeconds ?? 3600;
  const posted = await postJob(clients, {
    teeTypeMask: 1 << TEE_TYPES[node.teeType],
    allowedMeasurements: [node.measurement],
    workloadHash,
    inputCommitment,
    deadline: BigInt(Math.max(chainNow, now()) + deadlineSeconds),
    claimTimeout: BigInt(opts.claimTimeoutSeconds ?? 900),
    escrow: opts.escrow,
  });
  const jobId = posted.jobId;
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
    grantExpiresAt: now() + deadlineSeconds,
    ...(opts.mutateGrant ? { mutateGrant: opts.mutateGrant } : {}),
  });
  const reclaim = async (): Promise<boolean> => {
    const j = await getJob(clients, jobId);
    if (j.status !== JobStatus.Failed && j.status !== JobStatus.Open) return false;
    await reclaimJob(clients, jobId);
    return true;
  };
  try {
    await api.submitJob({ ...built.body, inputs: refs.map((r) => r.artifactId) });
  } catch (e) {
    const reclaimed = await reclaim().catch(() => false);
    const err = e as FirnError;
    throw new JobFailedError(err.code ?? 'E_UNAVAILABLE', err.message, jobId, reclaimed);
  }
  const end = await api.followEvents(jobId, async (message) => {
    const ev = JSON.parse(new TextDecoder().decode(await built.channel.openEvent(message))) as Record<
      string,
      unknown
    >;
    opts.onProgress?.(ev);
  });
  if (end.status !== 'proved') {
    const reclaimed = await reclaim().catch(() => false);
    throw new JobFailedError(
      end.error?.code ?? 'E_JOB_FAILED',
      end.error?.message ?? 'job failed',
      jobId,
      reclaimed,
    );
  }

  const result = await api.getResult(jobId);
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
