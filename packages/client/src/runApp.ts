import { type FirnClients, firnDataLedgerAbi, getJob, JobStatus, NodeStatus, postData } from '@firn/chain';
import {
  bytesToHex,
  computeAppWorkloadHash,
  computeInputCommitment,
  FirnError,
  type Hex,
  hexBytes,
  type JobRequest,
  jobChannelInfo,
  parseOutputBound,
  signedDataDigest,
  utf8,
  withParamsSalt,
  type WorkProofJson,
} from '@firn/core';
import {
  artifactId,
  assertKemRecipientKeys,
  createGrant,
  type Grant,
  openChannel,
  parseGrant,
} from '@firn/crypto';
import { assertStillEligible } from './attestNode.ts';
import { readAllNodeEligibility } from './chainView.ts';
import { type JobPlan, RECIPIENTS_PARAM } from './grantForJob.ts';
import {
  connectToNode,
  type MarketOptions,
  type MarketSession,
  nudgeChain,
  type JobPostedAt,
  postJobWithDeadline,
  reclaimIfPossible,
  uploadSealed,
} from './marketJob.ts';
import { AgreeingChainView } from './chainView.ts';
import { createFirnClients } from '@firn/chain';
import { followUntilLapse, isLapseBound, NUDGE_RECEIPT_MS, type StreamEnd } from './followUntilLapse.ts';
import { fetchResultOutputs, summaryOutputSizes, verifyResultProof } from './resultOutputs.ts';
import {
  awaitResult,
  chainBoundedFollow,
  JobFailedError,
  NodeLostError,
  openSummary,
  settleHostFailure,
  settleRefusedSubmission,
  settleSealedFailure,
  submitWithOneRetry,
  summaryMismatch,
  waitOutLostNode,
} from './runJob.ts';
import { openOutput, type SealedInput, sealInput } from './sealInput.ts';
import { parseSignedDataRecord, type SignedDataRecord } from './signedData.ts';

/**
 * Run a workload of a developer's app (issue 12; docs/decisions/1080-app-model.md, 1101): attest a
 * node hosting the app, seal the requester's inputs, post the job naming the app, collect the other
 * owners' grants, send the encrypted request, follow progress, open the outputs, verify the Work
 * Proof and make sure every enclave-signed data record is on the data ledger.
 */

/** One input of an app job. */
export type AppJobInput =
  /** The requester's own plaintext: sealed here to the requester's KEM key and granted by the requester. */
  | { role: string; bytes: Uint8Array; contentType: string }
  /** The requester's own, already sealed (with its data key). */
  | { role: string; sealed: SealedInput }
  /** Another owner's sealed artifact (ciphertext only): uploaded here, granted by its owner. */
  | { role: string; foreignSealed: Uint8Array };

export interface RunAppOptions extends MarketOptions {
  /** The app's measurement (32 bytes, 0x hex): only a node whose registered measurement it is runs the job. */
  app: Hex;
  workload: string;
  inputs: AppJobInput[];
  params?: Record<string, unknown>;
  /** More X25519 public keys the outputs are sealed to (e.g. the other data owners), at most 15. */
  recipients?: Uint8Array[];
  onProgress?: (event: Record<string, unknown>) => void;
  /** Called once the job is posted, with where it was posted (decision 1650; as RunJobOptions.onPosted). */
  onPosted?: (jobId: Hex, posted: JobPostedAt) => void;
  /**
   * Called with the job plan once the job is posted; must resolve to the grants of every foreign
   * input (from their owners, see grantForJob). Required when an input is foreign.
   */
  collectGrants?: (plan: JobPlan) => Promise<unknown[]>;
  /** How long to wait for the node to post the signed-data records before posting them itself, ms (default 10 000). */
  recordWaitMs?: number;
  /** The most storage the job's sealed outputs may take, bytes (as RunJobOptions.maxOutputBytes, decision 1690). */
  maxOutputBytes?: number;
}

export interface RunAppResult {
  jobId: Hex;
  plan: JobPlan;
  node: { endpoint: string; enclaveId: Hex; enclaveAddress: Hex; measurement: Hex };
  /** Opened with the requester's KEM key. */
  outputs: { role: string; contentType: string; bytes: Uint8Array }[];
  /** The sealed outputs as received (other recipients open them with their own keys). */
  sealedOutputs: { role: string; artifactId: Hex; sealed: Uint8Array }[];
  proof: WorkProofJson;
  proofCheck: { ok: boolean; reasons: string[] };
  /** Enclave-signed data records, each on the data ledger (txHash and blockNumber filled in). */
  records: SignedDataRecord[];
  summary: Record<string, unknown>;
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * The endpoint of the first Active node whose registered measurement is `app` and allow-listed
 * (E_NOT_FOUND naming the app when none hosts it).
 */
export async function findAppNode(view: AgreeingChainView, app: Hex): Promise<string> {
  const all = await readAllNodeEligibility(view);
  const hit = all.find(
    (e) => e.node.status === NodeStatus.Active && e.measurementAllowed && same(e.node.measurement, app),
  );
  if (!hit)
    throw new FirnError(
      'E_NOT_FOUND',
      `no Active node hosts the app ${app} with an allow-listed measurement (publish it with firn app publish, host it with --app)`,
    );
  return hit.node.endpoint;
}

/** A posted app job waiting for its grants (see `prepareAppJob`, `completeAppJob`). */
export interface PreparedAppJob {
  m: MarketSession;
  opts: RunAppOptions;
  plan: JobPlan;
  own: { role: string; artifactId: Hex; dataKey: Uint8Array }[];
  chainTime: number;
}

/**
 * Attest a node hosting the app, seal and upload the inputs, and post the job (bound to that
 * Enclave ID and the app's measurement, workloadHash = computeAppWorkloadHash). Returns the job plan
 * the other owners grant against. Raises E_NOT_FOUND (no node hosts the app), E_POLICY_REJECTED
 * (attestation, or the node runs other code), E_INVALID_INPUT (too many recipients, a recipient key
 * that is malformed or of low order, named by index, duplicate roles).
 */
export async function prepareAppJob(opts: RunAppOptions): Promise<PreparedAppJob> {
  const app = bytesToHex(hexBytes(opts.app, 'app measurement', 32));
  // A low-order or malformed key is refused before any node is asked, anything sealed or posted
  // (RFC 9180 §7.1.4; decision 1531).
  assertKemRecipientKeys(opts.recipients ?? [], 'extra recipient');
  if (opts.maxOutputBytes !== undefined) parseOutputBound(opts.maxOutputBytes, 'maxOutputBytes');
  let node = opts.node;
  if (node === undefined) {
    const clients = createFirnClients(opts.rpcUrl, undefined, opts.deployment);
    node = await findAppNode(
      AgreeingChainView.of(clients, opts.extraRpcUrls ?? [], opts.chainView ?? {}),
      app,
    );
  }
  const m = await connectToNode({ ...opts, node });
  if (!same(m.node.measurement, app))
    throw new FirnError(
      'E_POLICY_REJECTED',
      `node ${m.node.endpoint} runs measurement ${m.node.measurement}, not the app ${app}`,
    );
  const roles = new Set<string>();
  for (const i of opts.inputs) {
    if (roles.has(i.role)) throw new FirnError('E_INVALID_INPUT', `input role ${i.role} is given twice`);
    roles.add(i.role);
  }
  const extra = (opts.recipients ?? []).map((k) => bytesToHex(k));
  if (extra.length > 15) throw new FirnError('E_INVALID_INPUT', 'at most 15 extra recipients');
  const params: Record<string, unknown> = { ...(opts.params ?? {}) };
  if (extra.length > 0) params[RECIPIENTS_PARAM] = extra;
  // A fresh salt (decision 1854): the posted workload hash confirms no guess of the params. It is
  // in the plan, so every owner computes the same hash.
  Object.assign(params, withParamsSalt(params));

  const own: PreparedAppJob['own'] = [];
  const refs: { role: string; artifactId: Hex }[] = [];
  for (const i of opts.inputs) {
    if ('foreignSealed' in i) {
      const s = {
        sealed: i.foreignSealed,
        dataKey: new Uint8Array(0),
        artifactId: artifactId(i.foreignSealed),
        contentType: '',
      };
      await uploadSealed(m.api, s, `input ${i.role}`);
      refs.push({ role: i.role, artifactId: s.artifactId });
      continue;
    }
    const s = 'sealed' in i ? i.sealed : await sealInput(i.bytes, i.contentType, m.kem.publicKey);
    await uploadSealed(m.api, s, `input ${i.role}`);
    refs.push({ role: i.role, artifactId: s.artifactId });
    own.push({ role: i.role, artifactId: s.artifactId, dataKey: s.dataKey });
  }
  const workloadHash = computeAppWorkloadHash(app, opts.workload, params, refs);
  const inputCommitment = computeInputCommitment(refs.map((r) => r.artifactId));
  const { jobId, deadline, posted } = await postJobWithDeadline(m, opts, { workloadHash, inputCommitment });
  opts.onPosted?.(jobId, posted);
  const chainTime = Number((await m.clients.public.getBlock()).timestamp);
  const plan: JobPlan = {
    v: 1,
    chainId: opts.deployment.chainId,
    jobMarket: opts.deployment.jobMarket,
    jobId,
    enclaveId: m.node.enclaveId,
    endpoint: m.node.endpoint,
    app,
    workload: opts.workload,
    params,
    inputs: refs,
    resultRecipient: bytesToHex(m.kem.publicKey),
    // The deadline posted, to the second: the grant takes the earlier of plan and job deadline.
    expiresAt: Number(deadline),
  };
  return { m, opts, plan, own, chainTime };
}

/**
 * Make sure an enclave-signed record is on the ledger (the node posts it; after `waitMs` the
 * requester relays it itself, which anyone may) and return it with its transaction and block.
 */
export async function ensureRecordPosted(
  clients: FirnClients,
  record: SignedDataRecord,
  waitMs = 10_000,
): Promise<SignedDataRecord> {
  const ledger = clients.addresses.dataLedger;
  const digest = signedDataDigest(record.ledger, record);
  const read = () =>
    clients.public.readContract({
      address: ledger,
      abi: firnDataLedgerAbi,
      functionName: 'getRecord',
      args: [digest],
    });
  // A duration on the monotonic clock: a host clock stepped meanwhile neither cuts nor stretches it.
  const deadline = performance.now() + waitMs;
  let r = await read();
  while (r.signer === '0x0000000000000000000000000000000000000000' && performance.now() < deadline) {
    await new Promise((res) => setTimeout(res, 300));
    r = await read();
  }
  if (r.signer === '0x0000000000000000000000000000000000000000') {
    await postData(clients, {
      enclaveId: record.enclaveId,
      dataHash: record.dataHash,
      uri: record.uri,
      signature: record.signature,
    }).catch(async (e: unknown) => {
      // The node may have posted it meanwhile; anything else is a real failure.
      if ((await read()).signer === '0x0000000000000000000000000000000000000000') throw e;
    });
    r = await read();
  }
  const logs = await clients.public.getContractEvents({
    address: ledger,
    abi: firnDataLedgerAbi,
    eventName: 'DataPosted',
    args: { enclaveId: record.enclaveId, dataHash: record.dataHash },
    fromBlock: r.blockNumber,
    toBlock: r.blockNumber,
  });
  const ev = logs.find((l) => same(l.args.digest ?? '0x', digest));
  return {
    ...record,
    ...(ev?.transactionHash ? { txHash: ev.transactionHash } : {}),
    blockNumber: r.blockNumber.toString(),
  };
}

/**
 * Send the request of a prepared job with the requester's grants and the other owners' grants,
 * follow it, open the outputs, verify the Work Proof against the job's own commitments, and make
 * sure the signed-data records are on the ledger. A job the enclave refuses rejects with
 * JobFailedError carrying the sealed message, after the escrow was reclaimed.
 */
export async function completeAppJob(
  p: PreparedAppJob,
  foreignGrants: unknown[] = [],
): Promise<RunAppResult> {
  const { m, opts, plan } = p;
  const workloadHash = computeAppWorkloadHash(plan.app, plan.workload, plan.params, plan.inputs);
  const inputCommitment = computeInputCommitment(plan.inputs.map((i) => i.artifactId));
  const kem = hexBytes(m.node.kemPublicKey, 'enclave KEM key', 32);
  const grants: Grant[] = [];
  for (const o of p.own)
    grants.push(
      await createGrant({
        ownerPrivateKey: hexBytes(opts.requesterKey, 'requester key', 32),
        artifactId: o.artifactId,
        dataKey: o.dataKey,
        enclaveId: m.node.enclaveId,
        enclaveKemPublicKey: kem,
        scope: { jobId: plan.jobId, workloadHash },
        expiresAt: plan.expiresAt,
        issuedAt: p.chainTime,
      }),
    );
  for (const g of foreignGrants) grants.push(parseGrant(g));
  for (const ref of plan.inputs)
    if (!grants.some((g) => same(g.artifactId, ref.artifactId)))
      throw new FirnError(
        'E_GRANT_INVALID',
        `no grant for input ${ref.role}: its owner has not granted it yet`,
      );
  const request: JobRequest = {
    v: 1,
    jobId: plan.jobId,
    kind: plan.workload,
    inputs: plan.inputs,
    grants,
    params: plan.params,
    resultRecipient: plan.resultRecipient,
    chainId: plan.chainId,
    jobMarket: plan.jobMarket,
    app: plan.app,
    // The enclave signs the app's records only for the ledger named here (not one the host picks).
    ...(/^0x0{40}$/i.test(m.clients.addresses.dataLedger)
      ? {}
      : { dataLedger: m.clients.addresses.dataLedger }),
    ...(opts.maxOutputBytes === undefined ? {} : { maxOutputBytes: opts.maxOutputBytes }),
  };
  const channel = await openChannel(kem, { info: jobChannelInfo(plan.jobId) });
  const message = await channel.sealRequest(utf8(JSON.stringify(request)));
  const reclaim = () => reclaimIfPossible(m.clients, plan.jobId);
  let sealedError: { code: FirnError['code']; message: string } | undefined;
  let delivered = 0;
  const onEvent = async (msg: string) => {
    const ev = JSON.parse(new TextDecoder().decode(await channel.openEvent(msg))) as Record<string, unknown>;
    // Counted once it opened: an event the host made up does not move the resume point.
    delivered++;
    const err =
      ev.stage === 'failed' ? (ev.error as { code?: unknown; message?: unknown } | undefined) : undefined;
    if (typeof err?.code === 'string' && err.code.startsWith('E_') && typeof err.message === 'string')
      sealedError = { code: err.code as FirnError['code'], message: err.message };
    opts.onProgress?.(ev);
  };
  // Never past the claim's lapse (decision 1475): a host that keeps the stream alive around a hung
  // enclave holds the requester only until then; the lapsed claim is then reclaimed.
  // Resumes after the events already opened (a second follow replays none of them). The host's
  // word about the job (its end, its refusals) is checked against the chain (decision 1822).
  const follow = chainBoundedFollow(m, plan.jobId, (signal: AbortSignal) =>
    m.api.followEvents(plan.jobId, onEvent, { from: delivered, signal }),
  );
  // No later than the deadline posted (expiresAt is that deadline), whatever the RPC says.
  const latestLapseAt = BigInt(plan.expiresAt);
  try {
    await assertStillEligible(m.view, m.node, opts.policy);
  } catch (e) {
    // Nothing was sent to the node: the job is still Open, and the reclaim ends it.
    const reclaimed = await reclaim().catch(() => false);
    const err = e as FirnError;
    throw new JobFailedError(err.code ?? 'E_UNAVAILABLE', err.message, plan.jobId, reclaimed);
  }
  let end: StreamEnd | undefined;
  try {
    await submitWithOneRetry(m.api, {
      jobId: plan.jobId,
      enc: bytesToHex(channel.enc),
      ciphertext: Buffer.from(message).toString('base64'),
      inputs: plan.inputs.map((i) => i.artifactId),
      ...(opts.maxOutputBytes === undefined ? {} : { maxOutputBytes: opts.maxOutputBytes }),
    });
  } catch (e) {
    // The node's word alone, about a job it may have claimed meanwhile: the chain decides.
    end = await settleRefusedSubmission(m, plan.jobId, e, opts, follow, latestLapseAt, () => sealedError);
  }
  if (end === undefined)
    try {
      end = await followUntilLapse(
        m,
        plan.jobId,
        follow,
        BigInt(p.chainTime) + BigInt(Math.min(opts.claimTimeoutSeconds ?? 900, m.deadlineSeconds)),
        latestLapseAt,
      );
    } catch (e) {
      const err = e instanceof FirnError ? e : new FirnError('E_UNAVAILABLE', (e as Error).message);
      if (isLapseBound(err)) {
        const j = await getJob(m.clients, plan.jobId);
        if (j.status === JobStatus.Proved || j.status === JobStatus.Paid) end = { status: 'proved' };
        else {
          // The claim lapsed by the chain's time as counted here: a block at the present time (anvil
          // mines only on transactions), then the reclaim, which the contract judges itself.
          await nudgeChain(m.clients, NUDGE_RECEIPT_MS).catch(() => undefined);
          const reclaimed = await reclaimIfPossible(m.clients, plan.jobId, true).catch(() => false);
          throw new NodeLostError(err.code, err.message, plan.jobId, reclaimed);
        }
      } else {
        // The node went away (or its stream failed) while it may hold the job: wait on the chain.
        end = await waitOutLostNode(m, plan.jobId, err, opts, follow, latestLapseAt);
      }
    }
  // A failure only the host reports is not final: the chain decides (decision 1581).
  if (end.status !== 'proved' && sealedError === undefined)
    end = await settleHostFailure(m, plan.jobId, end, opts, follow, latestLapseAt, () => sealedError);
  if (end.status !== 'proved')
    // The enclave sealed the failure: final about its run; the chain decides the escrow.
    end = await settleSealedFailure(
      m,
      plan.jobId,
      sealedError ?? { code: 'E_JOB_FAILED', message: 'job failed' },
      opts,
      latestLapseAt,
    );
  // Retried while the chain shows the job Proved, until its challenge window ends (as runJob).
  const result = await awaitResult(m, plan.jobId, opts);
  // The enclave's sealed summary and the Work Proof must both commit to exactly the outputs the
  // node lists before any of them is downloaded (verifyResultProof throws E_PROOF_INVALID).
  const summary = await openSummary(channel, result, m.node.endpoint);
  const check = await verifyResultProof(
    m.clients,
    m.node.endpoint,
    result,
    { jobId: plan.jobId, workloadHash, inputCommitment },
    [
      ...(same(result.proof.proof.measurement, plan.app)
        ? []
        : ['the proof names another measurement than the app']),
      ...summaryMismatch(summary, result),
    ],
  );
  const outputs: RunAppResult['outputs'] = [];
  const sealedOutputs: RunAppResult['sealedOutputs'] = [];
  // Each download is capped at the size the enclave sealed (its summary), not the host's word.
  for (const o of await fetchResultOutputs(m.api, result, summaryOutputSizes(summary))) {
    const opened = await openOutput(o.sealed, m.kem.privateKey);
    outputs.push({ role: o.role, contentType: opened.contentType, bytes: opened.bytes });
    sealedOutputs.push({ role: o.role, artifactId: o.artifactId, sealed: o.sealed });
  }
  // The records come from the summary sealed to us, never from the host.
  const listed = Array.isArray(summary.signedData) ? (summary.signedData as unknown[]) : [];
  const records: SignedDataRecord[] = [];
  for (const r of listed) {
    const rec = parseSignedDataRecord(r);
    if (!same(rec.enclaveId, m.node.enclaveId))
      check.reasons.push(`record ${rec.topic} names another enclave`);
    records.push(await ensureRecordPosted(m.clients, rec, opts.recordWaitMs ?? 10_000));
  }
  return {
    jobId: plan.jobId,
    plan,
    node: {
      endpoint: m.node.endpoint,
      enclaveId: m.node.enclaveId,
      enclaveAddress: m.node.enclaveAddress,
      measurement: m.node.measurement,
    },
    outputs,
    sealedOutputs,
    proof: result.proof,
    proofCheck: { ok: check.reasons.length === 0, reasons: check.reasons },
    records,
    summary,
  };
}

/**
 * `prepareAppJob` then `completeAppJob`, with `collectGrants(plan)` supplying the grants of foreign
 * inputs in between. The one call a requester makes (`firn run` uses it).
 */
export async function runApp(opts: RunAppOptions): Promise<RunAppResult> {
  const prepared = await prepareAppJob(opts);
  const foreign = opts.inputs.some((i) => 'foreignSealed' in i);
  if (foreign && opts.collectGrants === undefined)
    throw new FirnError(
      'E_INVALID_INPUT',
      'an input owned by another party needs collectGrants to get its grant',
    );
  let grants: unknown[] = [];
  try {
    grants = foreign ? await opts.collectGrants!(prepared.plan) : [];
  } catch (e) {
    const reclaimed = await reclaimIfPossible(prepared.m.clients, prepared.plan.jobId).catch(() => false);
    const err = e as FirnError;
    throw new JobFailedError(err.code ?? 'E_GRANT_INVALID', err.message, prepared.plan.jobId, reclaimed);
  }
  return completeAppJob(prepared, grants);
}
