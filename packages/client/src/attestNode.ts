import {
  type AppraiseRegistrationOptions,
  type AttestationPolicy,
  appraiseRegistration,
} from '@firn/attestation';
import { type FirnClients, type FirnNode, NodeStatus } from '@firn/chain';
import { FirnError, type Hex, type TeeTypeName, teeTypeName } from '@firn/core';
import {
  AgreeingChainView,
  type NodeEligibility,
  type PinnedBlock,
  readAllNodeEligibility,
  readNodeEligibility,
} from './chainView.ts';

export interface AttestedNode {
  endpoint: string;
  enclaveId: Hex;
  enclaveAddress: Hex;
  kemPublicKey: Hex;
  measurement: Hex;
  teeType: TeeTypeName;
  /** The registered operator, which the node's evidence binds (decision 1830); lower-case. */
  operator: Hex;
}

export interface AttestNodeOptions {
  policy: AttestationPolicy;
  roots?: Partial<Record<TeeTypeName, Uint8Array[]>>;
  /** GPU trust anchors, e.g. an explicitly pinned simulated GPU root (dev only). */
  gpuRoots?: AppraiseRegistrationOptions['gpuRoots'];
  /**
   * DCAP collateral for real SGX/TDX nodes whose evidence carries none or expired collateral, e.g.
   * `pcsCollateralSource({ baseUrl: 'https://pccs.example:8081' })` (the same source the verifier
   * daemon and the CLI use).
   */
  collateralSource?: AppraiseRegistrationOptions['collateralSource'];
  /**
   * SEV-SNP collateral for real SEV-SNP nodes, e.g. `createKdsClient()` (AMD's KDS or a mirror, the
   * same source as `firn verifier start --kds`): its VCEK, chain and CRL win over what the node
   * attaches. The production policy requires the CRL to have been checked, so a node that attaches
   * none is refused without this (decision 1765).
   */
  sevSnpCollateral?: AppraiseRegistrationOptions['sevSnpCollateral'];
  /** GPU RIMs (e.g. createRimServiceClient()) and OCSP client (createOcspClient()) for GPU evidence. */
  gpuRimSource?: AppraiseRegistrationOptions['gpuRimSource'];
  gpuOcsp?: AppraiseRegistrationOptions['gpuOcsp'];
  /**
   * Times the attestation request is asked again when the node refuses it as busy (429/503),
   * after its Retry-After (at most 5 s each); default ATTEST_BUSY_RETRIES (3).
   */
  busyRetries?: number;
  /** Unix seconds for the evidence checks. */
  now: number;
  /** The node's endpoint; when absent the first Active node of the registry is used. */
  node?: string;
  /** Or an exact Enclave ID. */
  enclaveId?: Hex;
  /** Enclave IDs the automatic choice skips (e.g. nodes a job was already lost on). */
  exclude?: readonly Hex[];
  /**
   * The automatic choice considers only nodes whose registered measurement is one of these (a
   * first-party job passes the first-party image measurements, so it never lands on a developer
   * app's node, which would refuse it at preflight: docs/decisions/1090). Explicit `node` or
   * `enclaveId` choices are not filtered. Absent: any measurement.
   */
  measurements?: readonly Hex[];
  /**
   * The registry view; every endpoint in it must agree (default: `clients` alone). Under a policy
   * that refuses the simulated TEE (production), a single endpoint is accepted only with a pinned
   * `policy.measurementAllowList` (docs/decisions/0870-trusted-chain-view.md).
   */
  chainView?: AgreeingChainView;
  /**
   * Whether the attestation request may go to a loopback, private or other forbidden address
   * (docs/decisions/1832). Default true: a requester runs where its user is and asks the nodes its
   * user chose, a devnet on 127.0.0.1 included, and every later call to the node (NodeApi) goes
   * to the same endpoint. A service that runs jobs for others inside a network it does not want
   * nodes to reach sets false: such an endpoint is then refused before any request.
   */
  allowPrivateEndpoints?: boolean;
}

const low = (h: string) => h.toLowerCase();

/**
 * The requester's allow-list rule, before any secret leaves: the node's registered measurement
 * must be allow-listed on chain at the block read, and on the policy's own list when it pins one.
 * Throws E_POLICY_REJECTED naming the measurement and the block.
 */
export function assertMeasurementEligible(e: NodeEligibility, policy: AttestationPolicy): void {
  const m = low(e.node.measurement);
  if (!e.measurementAllowed)
    throw new FirnError(
      'E_POLICY_REJECTED',
      `node ${e.node.enclaveId} runs measurement ${m}, which is not allow-listed on chain at block ${e.block.number} (revoked or never allowed)`,
      { details: { enclaveId: e.node.enclaveId, measurement: m, block: e.block.number.toString() } },
    );
  if (policy.measurementAllowList !== undefined && !policy.measurementAllowList.map(low).includes(m))
    throw new FirnError(
      'E_POLICY_REJECTED',
      `node ${e.node.enclaveId} runs measurement ${m}, which is not on the policy's pinned allow-list`,
      { details: { enclaveId: e.node.enclaveId, measurement: m } },
    );
}

/**
 * A production policy must not rest on one RPC endpoint alone: it needs either a pinned
 * measurement allow-list or a second endpoint that must agree. E_POLICY_REJECTED otherwise.
 */
export function assertTrustedChainView(view: AgreeingChainView, policy: AttestationPolicy): void {
  if (policy.allowSimulated || view.size >= 2 || policy.measurementAllowList !== undefined) return;
  throw new FirnError(
    'E_POLICY_REJECTED',
    `policy ${policy.name} reads the on-chain allow-list through a single RPC endpoint: pin a measurementAllowList in the policy or configure a second RPC endpoint`,
  );
}

/**
 * Re-read the node at a fresh block and refuse it unless it is still Active with the same keys,
 * the same operator and an allow-listed measurement: the last check before grants (data keys)
 * leave the requester.
 */
export async function assertStillEligible(
  view: AgreeingChainView,
  node: AttestedNode,
  policy: AttestationPolicy,
): Promise<PinnedBlock> {
  const e = await readNodeEligibility(view, node.enclaveId);
  if (e.node.status !== NodeStatus.Active)
    throw new FirnError('E_POLICY_REJECTED', `node ${node.enclaveId} is no longer Active`);
  if (
    low(e.node.enclaveAddress) !== low(node.enclaveAddress) ||
    low(e.node.kemPublicKey) !== low(node.kemPublicKey)
  )
    throw new FirnError('E_POLICY_REJECTED', `node ${node.enclaveId} rotated its keys since it was attested`);
  if (low(e.node.operator) !== low(node.operator))
    throw new FirnError(
      'E_POLICY_REJECTED',
      `node ${node.enclaveId} is registered by operator ${low(e.node.operator)} now, not by ${low(node.operator)} it was attested for`,
    );
  assertMeasurementEligible(e, policy);
  return e.block;
}

const same = (a: string, b: string) =>
  a.toLowerCase().replace(/\/+$/, '') === b.toLowerCase().replace(/\/+$/, '');

/**
 * The registry's automatic choice: the first Active node that matches `node` (endpoint), is not
 * in `exclude`, and (when `measurements` is given and no endpoint is) runs one of `measurements`;
 * among those, the first whose measurement is allow-listed, else the first (refused later with
 * the reason). Undefined when none matches.
 */
export function chooseNode(
  all: readonly NodeEligibility[],
  opts: Pick<AttestNodeOptions, 'node' | 'exclude' | 'measurements'>,
): NodeEligibility | undefined {
  const active = all.filter(
    (e) =>
      e.node.status === NodeStatus.Active &&
      (opts.node === undefined || same(e.node.endpoint, opts.node)) &&
      !(opts.exclude ?? []).some((x) => low(x) === low(e.node.enclaveId)) &&
      (opts.node !== undefined ||
        opts.measurements === undefined ||
        opts.measurements.some((m) => low(m) === low(e.node.measurement))),
  );
  // Automatic choice skips nodes whose measurement is not allow-listed; if that leaves none,
  // the first Active one is refused below with the reason.
  return active.find((e) => e.measurementAllowed) ?? active[0];
}

/** Busy refusals (429/503) of the attestation request attestNode waits out, at most. */
export const ATTEST_BUSY_RETRIES = 3;

/**
 * Attest a node for a job: choose it from the registry, fetch evidence with our own fresh nonce,
 * verify and evaluate it under our policy, and compare the attested identity (TEE type,
 * measurement, enclave address, KEM key, Enclave ID derivation, operator) with the Active
 * registration. It
 * proves the endpoint answered for the registered enclave just now; it does not prove the host
 * will relay the job faithfully (the channel and the Work Proof cover that).
 */
export async function attestNode(clients: FirnClients, opts: AttestNodeOptions): Promise<AttestedNode> {
  const view = opts.chainView ?? new AgreeingChainView([clients]);
  assertTrustedChainView(view, opts.policy);
  let chosen: NodeEligibility | undefined;
  if (opts.enclaveId !== undefined) {
    chosen = await readNodeEligibility(view, opts.enclaveId);
    if (
      opts.node !== undefined &&
      chosen.node.status === NodeStatus.Active &&
      !same(chosen.node.endpoint, opts.node)
    )
      throw new FirnError(
        'E_INVALID_INPUT',
        `node ${opts.enclaveId} is registered at ${chosen.node.endpoint}, not at ${opts.node}: name one of them, or both as registered`,
      );
  } else chosen = chooseNode(await readAllNodeEligibility(view), opts);
  const node: FirnNode | undefined = chosen?.node;
  if (!chosen || !node || node.status !== NodeStatus.Active)
    throw new FirnError(
      'E_NOT_FOUND',
      opts.node
        ? `no Active node registered at ${opts.node}`
        : opts.measurements !== undefined
          ? `no Active node in the registry runs one of the ${opts.measurements.length} accepted measurement(s) (first-party images)`
          : 'no Active node in the registry',
    );
  assertMeasurementEligible(chosen, opts.policy);
  const claim = {
    enclaveId: node.enclaveId,
    teeType: teeTypeName(node.teeType),
    measurement: node.measurement,
    enclaveAddress: node.enclaveAddress,
    kemPublicKey: node.kemPublicKey,
    endpoint: node.endpoint,
    operator: node.operator.toLowerCase() as Hex,
  };
  const verdict = await appraiseRegistration(claim, {
    now: opts.now,
    policy: opts.policy,
    ...(opts.roots === undefined ? {} : { roots: opts.roots }),
    ...(opts.gpuRoots === undefined ? {} : { gpuRoots: opts.gpuRoots }),
    ...(opts.collateralSource === undefined ? {} : { collateralSource: opts.collateralSource }),
    ...(opts.sevSnpCollateral === undefined ? {} : { sevSnpCollateral: opts.sevSnpCollateral }),
    ...(opts.gpuRimSource === undefined ? {} : { gpuRimSource: opts.gpuRimSource }),
    ...(opts.gpuOcsp === undefined ? {} : { gpuOcsp: opts.gpuOcsp }),
    // A node that refuses as busy (its rate limit, shared by every requester behind one address)
    // is asked again a few times before the job fails (decision 1791).
    busyRetries: opts.busyRetries ?? ATTEST_BUSY_RETRIES,
    allowPrivateEndpoints: opts.allowPrivateEndpoints ?? true,
  });
  if (!verdict.approve) {
    // Our own collateral/RIM/OCSP service being down, or the node not answering (E_UNREACHABLE:
    // refused, timed out), is worth a retry, not a verdict on the node.
    const retry = verdict.reasons.some((r) => r.code === 'E_UNAVAILABLE' || r.code === 'E_UNREACHABLE');
    throw new FirnError(
      retry ? 'E_UNAVAILABLE' : 'E_POLICY_REJECTED',
      `node ${node.endpoint} ${retry ? 'could not be attested' : 'attestation refused'}: ${verdict.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}`,
    );
  }
  return { ...claim, enclaveAddress: claim.enclaveAddress.toLowerCase() as Hex };
}
