import {
  type AppraiseRegistrationOptions,
  type AttestationPolicy,
  appraiseRegistration,
} from '@firn/attestation';
import { type FirnClients, type FirnNode, getNode, listNodes, NodeStatus } from '@firn/chain';
import { FirnError, type Hex, type TeeTypeName, teeTypeName } from '@firn/core';

export interface AttestedNode {
  endpoint: string;
  enclaveId: Hex;
  enclaveAddress: Hex;
  kemPublicKey: Hex;
  measurement: Hex;
  teeType: TeeTypeName;
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
  /** GPU RIMs (e.g. createRimServiceClient()) and OCSP client (createOcspClient()) for GPU evidence. */
  gpuRimSource?: AppraiseRegistrationOptions['gpuRimSource'];
  gpuOcsp?: AppraiseRegistrationOptions['gpuOcsp'];
  /** Unix seconds for the evidence checks. */
  now: number;
  /** The node's endpoint; when absent the first Active node of the registry is used. */
  node?: string;
  /** Or an exact Enclave ID. */
  enclaveId?: Hex;
}

const same = (a: string, b: string) =>
  a.toLowerCase().replace(/\/+$/, '') === b.toLowerCase().replace(/\/+$/, '');

/**
 * Attest a node for a job: choose it from the registry, fetch evidence with our own fresh nonce,
 * verify and evaluate it under our policy, and compare the attested identity (TEE type,
 * measurement, enclave address, KEM key, Enclave ID derivation) with the Active registration. It
 * proves the endpoint answered for the registered enclave just now; it does not prove the host
 * will relay the job faithfully (the channel and the Work Proof cover that).
 */
export async function attestNode(clients: FirnClients, opts: AttestNodeOptions): Promise<AttestedNode> {
  let node: FirnNode | undefined;
  if (opts.enclaveId !== undefined) node = await getNode(clients, opts.enclaveId);
  else {
    const active = await listNodes(clients, { status: [NodeStatus.Active] });
    node = opts.node === undefined ? active[0] : active.find((n) => same(n.endpoint, opts.node!));
  }
  if (!node || node.status !== NodeStatus.Active)
    throw new FirnError(
      'E_NOT_FOUND',
      opts.node ? `no Active node registered at ${opts.node}` : 'no Active node in the registry',
    );
  const claim = {
    enclaveId: node.enclaveId,
    teeType: teeTypeName(node.teeType),
    measurement: node.measurement,
    enclaveAddress: node.enclaveAddress,
    kemPublicKey: node.kemPublicKey,
    endpoint: node.endpoint,
  };
  const verdict = await appraiseRegistration(claim, {
    now: opts.now,
    policy: opts.policy,
    ...(opts.roots === undefined ? {} : { roots: opts.roots }),
    ...(opts.gpuRoots === undefined ? {} : { gpuRoots: opts.gpuRoots }),
    ...(opts.collateralSource === undefined ? {} : { collateralSource: opts.collateralSource }),
    ...(opts.gpuRimSource === undefined ? {} : { gpuRimSource: opts.gpuRimSource }),
    ...(opts.gpuOcsp === undefined ? {} : { gpuOcsp: opts.gpuOcsp }),
  });
  if (!verdict.approve)
    throw new FirnError(
      // Our own collateral/RIM/OCSP service being down is worth a retry, not a verdict on the node.
      verdict.reasons.some((r) => r.code === 'E_UNAVAILABLE') ? 'E_UNAVAILABLE' : 'E_POLICY_REJECTED',
      `node attestation refused: ${verdict.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}`,
    );
  return { ...claim, enclaveAddress: claim.enclaveAddress.toLowerCase() as Hex };
}
