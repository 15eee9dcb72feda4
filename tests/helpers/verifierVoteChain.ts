// A real anvil with the Firn contracts, genuine simulated enclaves (the enclave program on a
// simulated platform) and node endpoints the test controls: what a verifier daemon's votes are
// tested against (tests/attacks/vote-bound-to-round, rounds-judged-independently).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { certificateDer, DEV_POLICY } from '@firn/attestation';
import {
  type AnvilInstance,
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  joinVerifierSet,
} from '@firn/chain';
import {
  bytesToHex,
  computeEnclaveId,
  computePlatformIdHash,
  type EvidenceBundle,
  type Hex,
  hexToBytes,
  measurementDigest,
} from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider } from '@firn/enclave';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { VerifierDaemon, type VerifierDaemonOptions } from '@firn/verifier';
import { startVerifierChain } from '../../packages/verifier/test/pendingNodeChain.ts';

export const ETH = 10n ** 18n;
const POLL = { pollingIntervalMs: 50 };

export interface GenuineEnclave {
  measurement: Hex;
  enclaveId: Hex;
  platformIdHash: Hex;
  enclaveAddress: Hex;
  kemPublicKey: Hex;
  /** The simulated root its platform's attestation key chains to. */
  rootDer: Uint8Array;
  /** The measured bytes: `genuineEnclave(sha)` is the same code on another platform. */
  sha: Uint8Array;
  /** The enclave's evidence for `nonce`, binding its own keys. */
  attest(nonce: Hex): Promise<EvidenceBundle>;
}

/** The operator of `voteChain` (anvil account 1 of the devnet mnemonic). */
export const VOTE_CHAIN_OPERATOR: Hex = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';

/**
 * An initialised enclave program on a fresh simulated platform: its evidence is genuine, and
 * binds `operator` (default: `voteChain`'s operator, decision 1830).
 */
export async function genuineEnclave(
  measured?: Uint8Array,
  operator: Hex = VOTE_CHAIN_OPERATOR,
): Promise<GenuineEnclave> {
  const root = await createSimulatedRoot();
  const platform = await createSimulatedPlatform(root);
  const sha = measured ?? new Uint8Array(randomBytes(32));
  const platformId = hexToBytes(platform.platformId);
  const program = createEnclaveProgram({
    provider: createSimulatedProvider(platform, sha),
    measurementRegisters: [sha],
    platformId,
  } as never);
  const init = (await program.handle('init', { operator })) as { enclaveAddress: Hex; kemPublicKey: Hex };
  const m = measurementDigest('simulated', [sha]);
  return {
    measurement: bytesToHex(m),
    enclaveId: bytesToHex(computeEnclaveId('simulated', platformId, m)),
    platformIdHash: bytesToHex(computePlatformIdHash('simulated', platformId)),
    enclaveAddress: init.enclaveAddress,
    kemPublicKey: init.kemPublicKey,
    rootDer: certificateDer(root.certificatePem),
    sha,
    attest: async (nonce) => (await program.handle('attest', { nonce })) as EvidenceBundle,
  };
}

/** registerNode parameters for `enclave` at `endpoint`, with its own keys, stake 1 ETH. */
export function registrationOf(enclave: GenuineEnclave, endpoint: string, evidenceDigest: Hex) {
  return {
    enclaveId: enclave.enclaveId,
    teeType: 1,
    measurement: enclave.measurement,
    platformIdHash: enclave.platformIdHash,
    enclaveAddress: enclave.enclaveAddress,
    kemPublicKey: enclave.kemPublicKey,
    endpoint,
    evidenceDigest,
    stake: ETH,
  };
}

export interface VoteChain {
  anvil: AnvilInstance;
  deployment: FirnDeployment;
  gov: FirnClients;
  operator: FirnClients;
  verifierKey: Hex;
  /** An account the operator holds outright (no enclave behind it): accounts[3]. */
  attackerKey: Hex;
}

/** Anvil and Firn: account 2 the only verifier (0.5 ETH staked), account 1 the operator. */
export async function startVoteChain(measurement: Hex): Promise<VoteChain> {
  const { anvil, deployment } = await startVerifierChain(measurement);
  const verifierKey = anvil.accounts[2]!.privateKey;
  await joinVerifierSet(createFirnClients(anvil.rpcUrl, verifierKey, deployment, POLL), ETH / 2n);
  return {
    anvil,
    deployment,
    gov: createFirnClients(anvil.rpcUrl, anvil.accounts[0]!.privateKey, deployment, POLL),
    operator: createFirnClients(anvil.rpcUrl, anvil.accounts[1]!.privateKey, deployment, POLL),
    verifierKey,
    attackerKey: anvil.accounts[3]!.privateKey,
  };
}

/**
 * The chain's verifier (account 2) trusting `roots` (simulated), with the dev policy, no proof or
 * liveness checks, one fetch attempt unless `extra` says otherwise; what it logs as warnings and
 * errors lands in `logs`.
 */
export function voteChainVerifier(
  chain: VoteChain,
  roots: Uint8Array[],
  extra: Partial<VerifierDaemonOptions> = {},
) {
  const logs: string[] = [];
  const daemon = new VerifierDaemon({
    rpcUrl: chain.anvil.rpcUrl,
    verifierKey: chain.verifierKey,
    deployment: chain.deployment,
    policy: DEV_POLICY,
    roots: { simulated: roots },
    logger: {
      info: (m, f) => logs.push(`info ${m} ${JSON.stringify(f ?? {})}`),
      warn: (m, f) => logs.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
      error: (m, f) => logs.push(`error ${m} ${JSON.stringify(f ?? {})}`),
    },
    checkProofs: false,
    challengeLiveness: false,
    fetchAttempts: 1,
    // The nodes here listen on 127.0.0.1 (decision 1832).
    allowPrivateEndpoints: true,
    ...extra,
  });
  return { daemon, logs };
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8'));
}

/** An HTTP server on 127.0.0.1 (port 0) standing for a node's endpoint; `url` is its origin. */
export async function serveEndpoint(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((e) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An endpoint that answers every attestation request with `enclave`'s genuine evidence. */
export function attestingEndpoint(enclave: GenuineEnclave) {
  return serveEndpoint(async (req, res) => {
    const { nonce } = (await readJson(req)) as { nonce: Hex };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(await enclave.attest(nonce)));
  });
}
