import { randomBytes } from 'node:crypto';
import {
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  getNode,
  getRoundOutlook,
  NodeStatus,
  type RoundOutlook,
  registerNode,
  requireWallet,
  rotateKeys,
  updateEndpoint,
} from '@firn/chain';
import {
  bytesToHex,
  computePlatformIdHash,
  evidenceBundleDigest,
  type Hex,
  hexBytes,
  InvalidInputError,
  TEE_TYPES,
  type TeeTypeName,
} from '@firn/core';
import { formatEther } from 'viem';
import type { Logger } from './logger.ts';
import type { NodeDaemon } from './nodeDaemon.ts';

export interface RegistrationOptions {
  rpcUrl: string;
  operatorKey: Hex;
  deployment: FirnDeployment;
  /** Wei of stake; the registry's registration fee is added on top. */
  stake: bigint;
  logger: Logger;
  pollIntervalMs?: number;
  /**
   * While the registration is Pending, how often to check that its round can still pass, ms
   * (default 15 000; decision 1761). A round that cannot is logged once and shown by GET /v1/node.
   */
  outlookIntervalMs?: number;
}

/** Default period of the stuck-round check while a registration is Pending, ms. */
export const DEFAULT_OUTLOOK_INTERVAL_MS = 15_000;

const ether = (wei: bigint) => `${formatEther(wei)} ether`;

/**
 * What an operator reads when its registration's round cannot pass (decisions 1758, 1779: the bar
 * never falls under the stake active now, capped at the round's snapshot total, and verifiers that
 * joined after the round's snapshot cannot vote in it): the figures and the way out.
 */
export function stuckRegistrationNotice(o: RoundOutlook): string {
  return (
    `registration round ${o.round} cannot pass: approvals ${ether(o.approvalStake)} plus the ` +
    `${ether(o.notVotedStake)} that verifiers who have not voted can still cast stay at or under 2/3 ` +
    `of ${ether(o.barAtLeast)} (the round's bar now: the verifier stake active now, at most the ` +
    `stake the round's snapshot counted; verifiers that joined after the registration cannot ` +
    `vote in its round). Way out: the operator calls the registry's ` +
    `requestExit(${o.enclaveId}) (@firn/chain requestExit; the stake is credited back to ` +
    'withdrawable, the registration fee is kept), withdraws it, and starts the node again: it ' +
    'registers under a new snapshot, where the verifiers active now vote'
  );
}

const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Verifiers approve a registration or key rotation only when the enclave's quotes bind the
 * account that sends it (decision 1830): sending it from another account would only lose the fee.
 * E_INVALID_INPUT naming both, before anything is sent.
 */
function assertEnclaveServes(operator: Hex | undefined, sender: Hex): void {
  if (operator !== undefined && eq(operator, sender)) return;
  throw new InvalidInputError(
    `the enclave was started for operator ${operator ?? '(none)'}, not for ${sender} that would register it: verifiers would refuse its evidence (E_EVIDENCE_OPERATOR); start the node with this account's key`,
  );
}

/**
 * Bring the on-chain registration in line with the running enclave: register when the Enclave
 * ID has no live registration (stake + the registry's registration fee, with the platform id hash
 * that makes one machine one capacity share), rotate keys when the enclave's keys changed, update
 * the endpoint when it moved, then follow the status until the verifier quorum decides (approval
 * by more than 2/3, refusal by more than 1/3 of the verifier stake snapshotted at registration).
 */
export async function ensureRegistered(node: NodeDaemon, opts: RegistrationOptions): Promise<NodeStatus> {
  const clients: FirnClients = createFirnClients(opts.rpcUrl, opts.operatorKey, opts.deployment, {
    pollingIntervalMs: opts.pollIntervalMs ?? 200,
  });
  const id = node.identity!;
  const log = opts.logger;
  const current = await getNode(clients, id.enclaveId);
  const live = [NodeStatus.Pending, NodeStatus.Active, NodeStatus.Exiting].includes(current.status);
  const sender = requireWallet(clients).account.address;
  if (!live) {
    assertEnclaveServes(id.operator, sender);
    const bundle = await node.attest(new Uint8Array(randomBytes(32)));
    const evidenceDigest = bytesToHex(evidenceBundleDigest(bundle));
    await registerNode(clients, {
      enclaveId: id.enclaveId,
      teeType: TEE_TYPES[id.teeType as TeeTypeName],
      measurement: id.measurement,
      // One physical machine, one capacity share: verifiers recompute it from the evidence.
      platformIdHash: bytesToHex(
        computePlatformIdHash(
          id.teeType as TeeTypeName,
          hexBytes(id.platformId, 'platformId', undefined, 64),
        ),
      ),
      enclaveAddress: id.enclaveAddress,
      kemPublicKey: id.kemPublicKey,
      endpoint: node.url,
      evidenceDigest,
      stake: opts.stake,
    });
    log.info('registered on chain; waiting for verifier approvals', {
      enclaveId: id.enclaveId,
      evidenceDigest,
    });
  } else {
    if (!eq(current.endpoint, node.url)) {
      await updateEndpoint(clients, id.enclaveId, node.url);
      log.info('endpoint updated on chain', { endpoint: node.url });
    }
    if (
      current.status === NodeStatus.Active &&
      !eq(current.enclaveAddress, id.enclaveAddress) &&
      !current.rotationPending
    ) {
      assertEnclaveServes(id.operator, sender);
      const bundle = await node.attest(new Uint8Array(randomBytes(32)));
      await rotateKeys(clients, {
        enclaveId: id.enclaveId,
        newEnclaveAddress: id.enclaveAddress,
        newKemPublicKey: id.kemPublicKey,
        newEvidenceDigest: bytesToHex(evidenceBundleDigest(bundle)),
      });
      log.info('key rotation requested with new evidence', { enclaveId: id.enclaveId });
    }
  }
  return followStatus(node, clients, opts);
}

async function followStatus(
  node: NodeDaemon,
  clients: FirnClients,
  opts: RegistrationOptions,
): Promise<NodeStatus> {
  const id = node.identity!;
  let last: NodeStatus | undefined;
  let nextOutlook = 0;
  let warnedRound: number | undefined;
  for (;;) {
    const n = await getNode(clients, id.enclaveId);
    node.chainStatus = NodeStatus[n.status].toLowerCase();
    if (n.status === NodeStatus.Pending && Date.now() >= nextOutlook) {
      nextOutlook = Date.now() + (opts.outlookIntervalMs ?? DEFAULT_OUTLOOK_INTERVAL_MS);
      const o = await getRoundOutlook(clients, id.enclaveId).catch(() => undefined);
      if (o !== undefined && !o.canApprove) {
        node.registrationNotice = stuckRegistrationNotice(o);
        if (warnedRound !== o.round) {
          warnedRound = o.round;
          opts.logger.warn('registration cannot pass', {
            enclaveId: id.enclaveId,
            round: o.round,
            approvalStake: o.approvalStake.toString(),
            notVotedStake: o.notVotedStake.toString(),
            barAtLeast: o.barAtLeast.toString(),
            notice: node.registrationNotice,
          });
        }
      } else if (o !== undefined) node.registrationNotice = undefined;
    }
    if (n.status !== NodeStatus.Pending) node.registrationNotice = undefined;
    if (n.status !== last) {
      opts.logger.info('registration status', {
        enclaveId: id.enclaveId,
        status: NodeStatus[n.status],
        approvalStake: n.approvalStake.toString(),
        refusalStake: n.refusalStake.toString(),
      });
      last = n.status;
    }
    const settled = n.status !== NodeStatus.Pending && !(n.status === NodeStatus.Active && n.rotationPending);
    if (settled) return n.status;
    await new Promise((r) => setTimeout(r, opts.pollIntervalMs ?? 200));
  }
}
