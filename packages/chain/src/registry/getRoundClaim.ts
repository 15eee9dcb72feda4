import { FirnError } from '@firn/core';
import type { Address, Hex } from 'viem';
import type { FirnClients } from '../clients.ts';
import { NodeStatus } from '../types.ts';
import { getNode } from './getNode.ts';

/**
 * What a node claims in its open round, read at one block: the facts a verifier checks evidence
 * against and the round its vote must name (decision 1831). A round fixes the enclave address, the
 * KEM key and the evidence digest: every register and rotateKeys opens a new one.
 */
export interface RoundClaim {
  enclaveId: Hex;
  /** A registration (the node is Pending) or a key rotation (Active with a rotation pending). */
  kind: 'registered' | 'keyRotation';
  round: number;
  /** The block the record and its events were read at. */
  blockNumber: bigint;
  operator: Address;
  teeType: number;
  measurement: Hex;
  platformIdHash: Hex;
  /** The round's keys: the registration's, or the rotation's pending ones. */
  enclaveAddress: Address;
  kemPublicKey: Hex;
  evidenceDigest: Hex;
  /** Where the node answers attestation requests (its latest NodeRegistered or EndpointUpdated). */
  endpoint: string;
  /** The verifier-set snapshot the round's votes are weighed against. */
  snapshotId: bigint;
}

/**
 * Read the claim of `enclaveId`'s open round at one block (`opts.blockNumber`, default the head):
 * the stored record and, for a registration, the KEM key from that very round's NodeRegistered
 * event (a rotation's pending KEM key is stored). Undefined when no round is open. Throws E_CHAIN
 * when the RPC's logs do not reach the round's event yet (its log index lags its state): the claim
 * is then unreadable, never another round's key beside this round's address. Throws as getNode does.
 */
export async function getRoundClaim(
  clients: FirnClients,
  enclaveId: Hex,
  opts: { blockNumber?: bigint } = {},
): Promise<RoundClaim | undefined> {
  const blockNumber = opts.blockNumber ?? (await clients.public.getBlockNumber({ cacheTime: 0 }));
  const node = await getNode(clients, enclaveId, { blockNumber });
  const rotation = node.status === NodeStatus.Active && node.rotationPending;
  if (node.status !== NodeStatus.Pending && !rotation) return undefined;
  if (!rotation && node.publishedRound !== node.round)
    throw new FirnError(
      'E_CHAIN',
      `round ${node.round} of ${enclaveId} is open at block ${blockNumber}, but the RPC's logs up to it end with round ${node.publishedRound}'s keys: its log index lags its state`,
      {
        details: { round: node.round, publishedRound: node.publishedRound, blockNumber: Number(blockNumber) },
      },
    );
  return {
    enclaveId,
    kind: rotation ? 'keyRotation' : 'registered',
    round: node.round,
    blockNumber,
    operator: node.operator,
    teeType: node.teeType,
    measurement: node.measurement,
    platformIdHash: node.platformIdHash,
    enclaveAddress: rotation ? node.pendingEnclaveAddress : node.enclaveAddress,
    kemPublicKey: rotation ? node.pendingKemPublicKey : node.kemPublicKey,
    evidenceDigest: rotation ? node.pendingEvidenceDigest : node.evidenceDigest,
    endpoint: node.endpoint,
    snapshotId: node.snapshotId,
  };
}
