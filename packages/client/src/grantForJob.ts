import type { AttestationPolicy } from '@firn/attestation';
import { createFirnClients, type FirnDeployment, getJob, JobStatus } from '@firn/chain';
import {
  assertPlainParams,
  assertRole,
  bytesToHex,
  computeAppWorkloadHash,
  computeInputCommitment,
  FirnError,
  type Hex,
  hexBytes,
  InvalidInputError,
  ParseError,
  type TeeTypeName,
  TooLargeError,
} from '@firn/core';
import { artifactId, createGrant, type Grant, readArtifactHeader, unwrapDataKey } from '@firn/crypto';
import { type AttestNodeOptions, attestNode } from './attestNode.ts';
import { AgreeingChainView } from './chainView.ts';

/**
 * Several data owners in one job (issue 12; docs/decisions/1101-multi-owner-jobs.md). The requester
 * posts the job bound to one attested enclave and publishes a JobPlan; each owner checks the plan
 * against the chain and the enclave itself (`grantForJob`) before wrapping its data key to it.
 */

/** The params key listing extra output recipients (the enclave's packages/enclave/src/jobs/recipients.ts). */
export const RECIPIENTS_PARAM = 'firn.recipients';
export const MAX_JOB_PLAN_BYTES = 256 * 1024;
const MAX_PLAN_INPUTS = 64;

/** What a requester shares with the other owners of a job's inputs (public: ids and keys only). */
export interface JobPlan {
  v: 1;
  chainId: number;
  jobMarket: Hex;
  jobId: Hex;
  /** The enclave the job is bound to on chain (and the grants are made to). */
  enclaveId: Hex;
  /** Its endpoint (where owners attest it and may upload their sealed artifact). */
  endpoint: string;
  /** The app's measurement (the job names it; the workload hash covers it). */
  app: Hex;
  workload: string;
  /** Params as committed (with "firn.recipients" when there are extra recipients). */
  params: Record<string, unknown>;
  inputs: { role: string; artifactId: Hex }[];
  /** The requester's own KEM key (the request's resultRecipient). */
  resultRecipient: Hex;
  /** Unix seconds: the grants (and the job's deadline) end here. */
  expiresAt: number;
}

/** Every KEM key the job's outputs are sealed to: the requester's, then params["firn.recipients"]. */
export function planRecipients(plan: Pick<JobPlan, 'resultRecipient' | 'params'>): Hex[] {
  const extra = plan.params[RECIPIENTS_PARAM];
  const list = Array.isArray(extra) ? (extra as unknown[]) : [];
  return [plan.resultRecipient, ...list.map((k) => bytesToHex(hexBytes(k, 'recipient', 32)))];
}

/** Parse a job plan (object or JSON text, at most MAX_JOB_PLAN_BYTES); E_PARSE / E_TOO_LARGE naming the field. */
export function parseJobPlan(input: unknown): JobPlan {
  let o: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_JOB_PLAN_BYTES)
      throw new TooLargeError('job plan', input.length, MAX_JOB_PLAN_BYTES);
    try {
      o = JSON.parse(input);
    } catch {
      throw new ParseError('the job plan is not JSON');
    }
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new ParseError('a job plan is a JSON object');
  const p = o as Record<string, unknown>;
  const hex = (v: unknown, what: string, n: number) => {
    try {
      return bytesToHex(hexBytes(v, what, n));
    } catch {
      throw new ParseError(`the job plan's ${what} must be ${n} bytes of hex`);
    }
  };
  if (p.v !== 1) throw new ParseError('the job plan must have v: 1');
  if (!Number.isSafeInteger(p.chainId)) throw new ParseError("the job plan's chainId must be an integer");
  if (typeof p.endpoint !== 'string' || !/^https?:\/\//.test(p.endpoint) || p.endpoint.length > 512)
    throw new ParseError("the job plan's endpoint must be an http(s) URL");
  if (!Number.isSafeInteger(p.expiresAt) || (p.expiresAt as number) <= 0)
    throw new ParseError("the job plan's expiresAt must be unix seconds");
  if (typeof p.params !== 'object' || p.params === null || Array.isArray(p.params))
    throw new ParseError("the job plan's params must be an object");
  if (!Array.isArray(p.inputs) || p.inputs.length === 0 || p.inputs.length > MAX_PLAN_INPUTS)
    throw new ParseError(`the job plan lists 1..${MAX_PLAN_INPUTS} inputs`);
  let workload: string;
  try {
    assertPlainParams(p.params);
    workload = assertRole(p.workload, 'workload');
  } catch (e) {
    throw new ParseError(`the job plan is invalid: ${(e as Error).message}`);
  }
  const inputs = (p.inputs as unknown[]).map((i, n) => {
    const r = i as Record<string, unknown>;
    let role: string;
    try {
      role = assertRole(r?.role, `inputs[${n}].role`);
    } catch (e) {
      throw new ParseError((e as Error).message);
    }
    return { role, artifactId: hex(r.artifactId, `inputs[${n}].artifactId`, 32) };
  });
  const plan: JobPlan = {
    v: 1,
    chainId: p.chainId as number,
    jobMarket: hex(p.jobMarket, 'jobMarket', 20),
    jobId: hex(p.jobId, 'jobId', 32),
    enclaveId: hex(p.enclaveId, 'enclaveId', 32),
    endpoint: p.endpoint,
    app: hex(p.app, 'app', 32),
    workload,
    params: p.params as Record<string, unknown>,
    inputs,
    resultRecipient: hex(p.resultRecipient, 'resultRecipient', 32),
    expiresAt: p.expiresAt as number,
  };
  try {
    planRecipients(plan);
  } catch {
    throw new ParseError(`the job plan's params["${RECIPIENTS_PARAM}"] must be 32-byte hex keys`);
  }
  return plan;
}

export interface GrantForJobOptions {
  rpcUrl: string;
  deployment: FirnDeployment;
  plan: JobPlan;
  /** The plan's input role this owner grants. */
  role: string;
  /** The owner's sealed artifact (sealed to `kemPrivateKey`'s public key). */
  sealed: Uint8Array;
  /** The owner's X25519 private key: unwraps the artifact's data key (never leaves this call). */
  kemPrivateKey: Uint8Array;
  /** The owner's secp256k1 key (signs the grant; needs no funds). */
  ownerKey: Hex;
  policy: AttestationPolicy;
  roots?: Partial<Record<TeeTypeName, Uint8Array[]>>;
  gpuRoots?: AttestNodeOptions['gpuRoots'];
  /** Refuse unless this KEM public key is among the job's output recipients (an owner who must get the result). */
  requireRecipient?: Uint8Array;
  /** Unix seconds for the evidence checks (default the local clock). */
  now?: () => number;
  /**
   * More RPC endpoints of the same chain that must agree on the registry reads (a production
   * policy needs a second one or a pinned allow-list; docs/decisions/0870-trusted-chain-view.md).
   */
  extraRpcUrls?: string[];
}

/**
 * Grant one artifact to a job of another requester, after checking everything the owner can check:
 * the sealed file is the plan's input of that role; the owner attests the plan's enclave itself
 * (its own nonce, its own policy; the registration must be Active and allow-listed) and the
 * attested measurement is the plan's app; the on-chain job is Open or Claimed, bound to exactly that
 * Enclave ID, allows that measurement, and its workloadHash and inputCommitment are the ones the
 * owner computes from the plan (app, workload, params, inputs); with `requireRecipient`, the owner's
 * key is among the recipients the workload hash covers. Returns the grant (data key wrapped to the
 * attested KEM key, scoped to the jobId and workloadHash, expiring at min(plan, job deadline)).
 * It does not prove what the app does with the data beyond its measurement (read the app's code).
 * Raises E_INVALID_INPUT (file or plan mismatch), E_POLICY_REJECTED (attestation, app, job binding),
 * E_GRANT_SCOPE (the job on chain is another computation), E_NOT_FOUND (no such job),
 * E_GRANT_EXPIRED (the plan or the job deadline has passed at the latest block's time).
 */
export async function grantForJob(o: GrantForJobOptions): Promise<Grant> {
  const plan = o.plan;
  const clients = createFirnClients(o.rpcUrl, undefined, o.deployment);
  if (
    plan.chainId !== o.deployment.chainId ||
    plan.jobMarket.toLowerCase() !== o.deployment.jobMarket.toLowerCase()
  )
    throw new InvalidInputError('the job plan is for another chain or job market than this deployment');
  const input = plan.inputs.find((i) => i.role === o.role);
  if (input === undefined)
    throw new InvalidInputError(
      `the job plan has no input ${o.role} (it has ${plan.inputs.map((i) => i.role).join(', ')})`,
    );
  if (artifactId(o.sealed) !== input.artifactId.toLowerCase())
    throw new InvalidInputError(`your sealed file is not the plan's input ${o.role} (artifact ids differ)`);
  const roles = plan.inputs.filter((i) => i.artifactId.toLowerCase() === input.artifactId.toLowerCase());
  if (roles.length > 1)
    throw new FirnError(
      'E_GRANT_SCOPE',
      `the job plan lists your artifact under more than one input (${roles.map((i) => i.role).join(', ')}): one grant would open it as each of them`,
    );
  const dataKey = await unwrapDataKey(readArtifactHeader(o.sealed), o.kemPrivateKey);
  if (o.requireRecipient !== undefined) {
    const mine = bytesToHex(o.requireRecipient);
    if (!planRecipients(plan).includes(mine))
      throw new FirnError(
        'E_GRANT_SCOPE',
        'the job does not send its outputs to your key: ask the requester to list it',
      );
  }
  const now = o.now ?? (() => Math.floor(Date.now() / 1000));
  const node = await attestNode(clients, {
    policy: o.policy,
    now: now(),
    enclaveId: plan.enclaveId,
    chainView: AgreeingChainView.of(clients, o.extraRpcUrls ?? []),
    ...(o.roots === undefined ? {} : { roots: o.roots }),
    ...(o.gpuRoots === undefined ? {} : { gpuRoots: o.gpuRoots }),
  });
  if (node.measurement.toLowerCase() !== plan.app.toLowerCase())
    throw new FirnError(
      'E_POLICY_REJECTED',
      `the plan's enclave runs ${node.measurement}, not the app ${plan.app}`,
    );
  const job = await getJob(clients, plan.jobId);
  if (job.status === JobStatus.None) throw new FirnError('E_NOT_FOUND', `no job ${plan.jobId} on chain`);
  if (job.status !== JobStatus.Open && job.status !== JobStatus.Claimed)
    throw new FirnError(
      'E_GRANT_SCOPE',
      `job ${plan.jobId} is ${JobStatus[job.status]}: nothing to grant to`,
    );
  if (job.enclaveIds.length !== 1 || job.enclaveIds[0]!.toLowerCase() !== plan.enclaveId.toLowerCase())
    throw new FirnError('E_POLICY_REJECTED', 'the job on chain is not bound to the plan’s enclave alone');
  if (!job.allowedMeasurements.some((m) => m.toLowerCase() === plan.app.toLowerCase()))
    throw new FirnError('E_POLICY_REJECTED', 'the job on chain does not require the plan’s app measurement');
  const workloadHash = computeAppWorkloadHash(plan.app, plan.workload, plan.params, plan.inputs);
  if (job.workloadHash.toLowerCase() !== workloadHash)
    throw new FirnError(
      'E_GRANT_SCOPE',
      'the job on chain is another computation than the plan (workload hash differs)',
    );
  if (job.inputCommitment.toLowerCase() !== computeInputCommitment(plan.inputs.map((i) => i.artifactId)))
    throw new FirnError('E_GRANT_SCOPE', 'the job on chain uses other inputs than the plan');
  const chainTime = Number((await clients.public.getBlock()).timestamp);
  const expiresAt = Math.min(plan.expiresAt, Number(job.deadline));
  // Judged on chain time alone: the contract enforces the deadline and the enclave's clock follows
  // the chain, so an owner's host clock ahead of the chain must not refuse a job that can still run
  // (docs/decisions/1460-requester-waits-on-chain-time.md).
  if (expiresAt <= chainTime)
    throw new FirnError('E_GRANT_EXPIRED', 'the job plan (or the job deadline) has already passed');
  return createGrant({
    ownerPrivateKey: hexBytes(o.ownerKey, 'owner key', 32),
    artifactId: input.artifactId,
    dataKey,
    enclaveId: plan.enclaveId,
    enclaveKemPublicKey: hexBytes(node.kemPublicKey, 'enclave KEM key', 32),
    scope: { jobId: plan.jobId, workloadHash },
    expiresAt,
    issuedAt: Math.min(chainTime, expiresAt),
  });
}
