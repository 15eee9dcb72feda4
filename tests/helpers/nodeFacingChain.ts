import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEV_POLICY } from '@firn/attestation';
import {
  type AnvilInstance,
  type FirnClients,
  type FirnDeployment,
  getRegistrationEvents,
  type RegistrationEvent,
  registerNode,
} from '@firn/chain';
import { bytesToHex, type Hex } from '@firn/core';
import { VerifierDaemon, type VerifierDaemonOptions } from '@firn/verifier';
import { startVoteChain } from './verifierVoteChain.ts';
import { keccak256, toHex } from 'viem';

// A chain where a node's registered endpoint is whatever a test serves: for the requests a
// verifier sends to a node-chosen URL (docs/decisions/1832-node-facing-fetches.md).

const ETH = 10n ** 18n;

export interface NodeFacingChain {
  anvil: AnvilInstance;
  deployment: FirnDeployment;
  /** Account 0 (the deployer, which governs). */
  gov: FirnClients;
  /** Account 1: registers nodes. */
  operator: FirnClients;
  /** Account 2: the only verifier, staked 0.5 ether. */
  verifierKey: Hex;
  /** The allow-listed measurement every registration uses. */
  measurement: Hex;
}

/** Anvil with the firn contracts, one allow-listed simulated measurement and one verifier. */
export async function startNodeFacingChain(): Promise<NodeFacingChain> {
  const measurement = keccak256(toHex('node-facing-build'));
  const { anvil, deployment, gov, operator, verifierKey } = await startVoteChain(measurement);
  return { anvil, deployment, gov, operator, verifierKey, measurement };
}

/**
 * Register a simulated node whose endpoint is `endpoint` (fresh random identity fields: only the
 * chain record matters); returns its Enclave ID and its NodeRegistered event.
 */
export async function registerNodeAt(
  chain: NodeFacingChain,
  endpoint: string,
): Promise<{ enclaveId: Hex; event: RegistrationEvent }> {
  const enclaveId = bytesToHex(randomBytes(32)) as Hex;
  await registerNode(chain.operator, {
    enclaveId,
    teeType: 1,
    measurement: chain.measurement,
    platformIdHash: bytesToHex(randomBytes(32)) as Hex,
    enclaveAddress: bytesToHex(randomBytes(20)) as Hex,
    kemPublicKey: bytesToHex(randomBytes(32)) as Hex,
    endpoint,
    evidenceDigest: bytesToHex(randomBytes(32)) as Hex,
    stake: ETH,
  });
  const events = await getRegistrationEvents(
    chain.gov,
    chain.deployment.deployBlock,
    await chain.gov.public.getBlockNumber({ cacheTime: 0 }),
  );
  const event = events.find((e) => e.enclaveId.toLowerCase() === enclaveId.toLowerCase());
  if (event === undefined) throw new Error('the registration left no NodeRegistered event');
  return { enclaveId, event };
}

/** The chain's verifier as a daemon driven by hand (onRegistration), dev policy, warnings kept. */
export function nodeFacingVerifier(chain: NodeFacingChain, extra: Partial<VerifierDaemonOptions> = {}) {
  const warnings: string[] = [];
  const daemon = new VerifierDaemon({
    rpcUrl: chain.anvil.rpcUrl,
    verifierKey: chain.verifierKey,
    deployment: chain.deployment,
    policy: DEV_POLICY,
    logger: {
      info() {},
      warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f ?? {})}`),
      error: (m, f) => warnings.push(`${m} ${JSON.stringify(f ?? {})}`),
    },
    checkProofs: false,
    challengeLiveness: false,
    fetchAttempts: 1,
    ...extra,
  });
  return { daemon, warnings };
}

/** An HTTP server on 127.0.0.1 (port 0); `url` is its origin. */
export async function serveHttp(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<{ server: Server; url: string; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((e) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
