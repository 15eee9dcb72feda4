import {
  bytesToHex,
  computeInputCommitment,
  computeWorkloadHash,
  type Hex,
  hexToBytes,
  type JobRequest,
  jobChannelInfo,
  parseOutputBound,
  utf8,
} from '@firn/core';
import { type CreateGrantParams, createGrant, openChannel, type RequesterChannel } from '@firn/crypto';

export interface JobInputRef {
  role: string;
  artifactId: Hex;
  dataKey: Uint8Array;
}

export interface BuildJobRequestParams {
  jobId: Hex;
  kind: string;
  inputs: readonly JobInputRef[];
  params: Record<string, unknown>;
  /** Owner key of the inputs (signs the grants). */
  requesterKey: Hex;
  enclave: { enclaveId: Hex; kemPublicKey: Hex };
  resultRecipient: Uint8Array;
  domain: { chainId: number; jobMarket: Hex };
  /** Unix seconds after which the grants are refused. */
  grantExpiresAt: number;
  /** Unix seconds: the latest block timestamp (the grants' issuedAt); default the local clock. */
  grantIssuedAt?: number;
  /** Fault tests only: alter the grant terms before they are signed. */
  mutateGrant?: (p: CreateGrantParams) => CreateGrantParams;
  /**
   * The most storage the job's sealed outputs may take, bytes (JobRequest.maxOutputBytes, each
   * output rounded up to 4096-byte blocks; 4096..2 GiB, decision 1690). Absent: none declared.
   */
  maxOutputBytes?: number;
}

/** workloadHash and inputCommitment of a job, as posted on chain. */
export function jobCommitments(
  kind: string,
  params: Record<string, unknown>,
  inputs: readonly { role: string; artifactId: Hex }[],
) {
  return {
    workloadHash: computeWorkloadHash(kind, params, inputs),
    inputCommitment: computeInputCommitment(inputs.map((i) => i.artifactId)),
  };
}

/**
 * Grant every input to one enclave for one job and assemble the job request (not yet sealed).
 * Shared by one-shot jobs and warm inference sessions.
 */
export async function createJobRequest(p: BuildJobRequestParams): Promise<JobRequest> {
  const { workloadHash } = jobCommitments(p.kind, p.params, p.inputs);
  const kem = hexToBytes(p.enclave.kemPublicKey, 'enclave KEM key');
  const grants = [];
  for (const i of p.inputs) {
    let terms: CreateGrantParams = {
      ownerPrivateKey: hexToBytes(p.requesterKey, 'requester key'),
      artifactId: i.artifactId,
      dataKey: i.dataKey,
      enclaveId: p.enclave.enclaveId,
      enclaveKemPublicKey: kem,
      scope: { jobId: p.jobId, workloadHash },
      expiresAt: p.grantExpiresAt,
      ...(p.grantIssuedAt === undefined ? {} : { issuedAt: p.grantIssuedAt }),
    };
    if (p.mutateGrant) terms = p.mutateGrant(terms);
    grants.push(await createGrant(terms));
  }
  return {
    v: 1,
    jobId: p.jobId,
    kind: p.kind,
    inputs: p.inputs.map((i) => ({ role: i.role, artifactId: i.artifactId })),
    grants,
    params: p.params,
    resultRecipient: bytesToHex(p.resultRecipient),
    chainId: p.domain.chainId,
    jobMarket: p.domain.jobMarket,
    ...(p.maxOutputBytes === undefined ? {} : { maxOutputBytes: parseOutputBound(p.maxOutputBytes) }),
  };
}

/**
 * Grant every input to one enclave for one job and seal the job request to that enclave's KEM key
 * through a fresh channel. Returns what POST /v1/jobs takes, and the channel to open the response
 * and progress events with.
 */
export async function buildJobRequest(p: BuildJobRequestParams): Promise<{
  body: { jobId: Hex; enc: Hex; ciphertext: string; maxOutputBytes?: number };
  channel: RequesterChannel;
  request: JobRequest;
}> {
  const kem = hexToBytes(p.enclave.kemPublicKey, 'enclave KEM key');
  const request = await createJobRequest(p);
  const channel = await openChannel(kem, { info: jobChannelInfo(p.jobId) });
  const message = await channel.sealRequest(utf8(JSON.stringify(request)));
  return {
    body: {
      jobId: p.jobId,
      enc: bytesToHex(channel.enc),
      ciphertext: Buffer.from(message).toString('base64'),
      // The node reserves this before its claim; the enclave checks it equals the sealed one.
      ...(request.maxOutputBytes === undefined ? {} : { maxOutputBytes: request.maxOutputBytes }),
    },
    channel,
    request,
  };
}
