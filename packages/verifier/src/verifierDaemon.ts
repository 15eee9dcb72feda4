import type { AttestationPolicy } from '@firn/attestation';
import {
  approveNode,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  getNode,
  NodeStatus,
  type RegistrationEvent,
  refuseNode,
  type RegistrationWatcher,
  watchRegistrations,
} from '@firn/chain';
import { type Hex, isFirnError, refusalNameOf, teeTypeName } from '@firn/core';
import { checkMeasurementAllowed } from './measurementAllowList.ts';
import { ProofChecker } from './proofChecker.ts';
import {
  type AppraiseRegistrationOptions,
  appraiseRegistration,
  type RegistrationClaim,
  type RegistrationVerdict,
} from '@firn/attestation';

export interface VerifierLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface VerifierDaemonOptions {
  rpcUrl: string;
  verifierKey: Hex;
  deployment: FirnDeployment;
  policy: AttestationPolicy;
  roots?: AppraiseRegistrationOptions['roots'];
  gpuRoots?: AppraiseRegistrationOptions['gpuRoots'];
  /** DCAP collateral for evidence that carries none or expired collateral (PCS/PCCS or offline). */
  collateralSource?: AppraiseRegistrationOptions['collateralSource'];
  /** GPU RIMs (NVIDIA's RIM service or an offline folder) and OCSP client for GPU evidence. */
  gpuRimSource?: AppraiseRegistrationOptions['gpuRimSource'];
  gpuOcsp?: AppraiseRegistrationOptions['gpuOcsp'];
  logger: VerifierLogger;
  pollIntervalMs?: number;
  /** Clock for verification; injectable for tests. */
  now?: () => number;
  /** Attempts to reach a node before refusing it as unreachable. */
  fetchAttempts?: number;
  fetchEvidence?: AppraiseRegistrationOptions['fetchEvidence'];
  /** Also re-check every submitted Work Proof and dispute invalid ones (default true). */
  checkProofs?: boolean;
}

/**
 * True when a refusal comes from a service of the verifier itself (PCS/PCCS, RIM service, OCSP
 * responder: E_UNAVAILABLE), which is no fact about the node; the daemon abstains instead of voting.
 */
export function ownServiceUnavailable(v: RegistrationVerdict): boolean {
  return !v.approve && v.reasons.some((r) => r.code === 'E_UNAVAILABLE');
}

export interface VerifierStats {
  approved: number;
  refused: number;
  skipped: number;
}

/**
 * Watches registrations and key rotations, re-verifies each with its own nonce, and votes on
 * chain: approve, or refuse with a reason code. It never trusts the node's own evidence digest.
 */
export class VerifierDaemon {
  readonly clients: FirnClients;
  readonly stats: VerifierStats = { approved: 0, refused: 0, skipped: 0 };
  private watcher: RegistrationWatcher | undefined;
  /** The Work Proof re-checker, when enabled. */
  proofs: ProofChecker | undefined;
  private readonly opts: VerifierDaemonOptions;

  constructor(opts: VerifierDaemonOptions) {
    this.opts = opts;
    this.clients = createFirnClients(opts.rpcUrl, opts.verifierKey, opts.deployment, {
      pollingIntervalMs: opts.pollIntervalMs ?? 200,
    });
  }

  start(): void {
    this.watcher = watchRegistrations(this.clients, {
      fromBlock: this.opts.deployment.deployBlock,
      pollIntervalMs: this.opts.pollIntervalMs ?? 500,
      onEvent: (e) => this.onRegistration(e),
      onError: (e) => this.opts.logger.warn('registration watch failed; retrying', { message: e.message }),
    });
    this.opts.logger.info('verifier watching registrations', { registry: this.opts.deployment.registry });
    if (this.opts.checkProofs !== false) {
      this.proofs = new ProofChecker(this.clients, {
        pollIntervalMs: this.opts.pollIntervalMs ?? 500,
        logger: this.opts.logger,
      });
      this.proofs.start();
    }
  }

  stop(): void {
    this.watcher?.stop();
    this.proofs?.stop();
  }

  /** Handle one registration or rotation event; public for tests. */
  async onRegistration(e: RegistrationEvent): Promise<void> {
    const log = this.opts.logger;
    const node = await getNode(this.clients, e.enclaveId);
    const rotation = e.kind === 'keyRotation';
    const open = rotation
      ? node.status === NodeStatus.Active && node.rotationPending
      : node.status === NodeStatus.Pending;
    if (!open || node.round !== e.round) {
      this.stats.skipped++;
      return;
    }
    const claim: RegistrationClaim = {
      enclaveId: e.enclaveId,
      teeType: teeTypeName(node.teeType),
      measurement: node.measurement,
      enclaveAddress: rotation ? node.pendingEnclaveAddress : node.enclaveAddress,
      kemPublicKey: rotation ? node.pendingKemPublicKey : node.kemPublicKey,
      endpoint: node.endpoint,
    };
    const evidenceDigest = rotation ? node.pendingEvidenceDigest : node.evidenceDigest;
    const attempts = this.opts.fetchAttempts ?? 5;
    // A measurement not allow-listed at the block read (e.g. revoked while pending) is refused
    // before any evidence is fetched.
    const allow = await checkMeasurementAllowed(
      this.clients,
      node,
      await this.clients.public.getBlockNumber({ cacheTime: 0 }),
    );
    let verdict: Awaited<ReturnType<VerifierDaemon['appraise']>> = allow.allowed
      ? await this.appraise(claim)
      : {
          approve: false,
          reasonCode: allow.reasonCode,
          reasons: [{ code: 'E_MEASUREMENT_NOT_ALLOWED', message: allow.message }],
        };
    const retry = (v: typeof verdict) =>
      !v.approve && (v.reasons[0]?.code === 'E_UNREACHABLE' || ownServiceUnavailable(v));
    for (let i = 1; i < attempts && allow.allowed && retry(verdict); i++) {
      await new Promise((r) => setTimeout(r, 500 * i));
      verdict = await this.appraise(claim);
    }
    if (ownServiceUnavailable(verdict)) {
      // Our collateral/RIM/OCSP service being down says nothing about the node: no vote (a node is
      // Active only with a quorum of approvals, so abstaining never admits one).
      this.stats.skipped++;
      log.warn('not voting: a collateral service is unavailable', {
        enclaveId: e.enclaveId,
        round: e.round,
        reasons: verdict.approve ? [] : verdict.reasons.map((r) => `${r.code}: ${r.message}`),
      });
      return;
    }
    try {
      if (verdict.approve) {
        await approveNode(this.clients, { enclaveId: e.enclaveId, evidenceDigest });
        this.stats.approved++;
        log.info('approved registration', { enclaveId: e.enclaveId, round: e.round, rotation });
      } else {
        await refuseNode(this.clients, {
          enclaveId: e.enclaveId,
          evidenceDigest,
          reasonCode: verdict.reasonCode,
        });
        this.stats.refused++;
        log.warn('refused registration', {
          enclaveId: e.enclaveId,
          round: e.round,
          reason: refusalNameOf(verdict.reasonCode),
          reasons: verdict.reasons.map((r) => `${r.code}: ${r.message}`),
        });
      }
    } catch (err) {
      // A vote already cast (e.g. after a restart) or a round that closed meanwhile is not an error.
      const msg = isFirnError(err) ? err.message : String(err);
      if (/AlreadyVoted|NoOpenRound|UnexpectedStatus|RoundClosed|NotPending/i.test(msg)) {
        this.stats.skipped++;
        return;
      }
      log.error('vote failed', { enclaveId: e.enclaveId, message: msg });
    }
  }

  /** Fetch, verify and evaluate a claim's evidence the way a vote does (no vote is cast). */
  appraise(claim: RegistrationClaim) {
    return appraiseRegistration(claim, {
      now: (this.opts.now ?? (() => Math.floor(Date.now() / 1000)))(),
      policy: this.opts.policy,
      ...(this.opts.roots === undefined ? {} : { roots: this.opts.roots }),
      ...(this.opts.gpuRoots === undefined ? {} : { gpuRoots: this.opts.gpuRoots }),
      ...(this.opts.collateralSource === undefined ? {} : { collateralSource: this.opts.collateralSource }),
      ...(this.opts.gpuRimSource === undefined ? {} : { gpuRimSource: this.opts.gpuRimSource }),
      ...(this.opts.gpuOcsp === undefined ? {} : { gpuOcsp: this.opts.gpuOcsp }),
      ...(this.opts.fetchEvidence === undefined ? {} : { fetchEvidence: this.opts.fetchEvidence }),
    });
  }
}
