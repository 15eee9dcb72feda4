import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AttestationPolicy, certificateDer, DEV_POLICY } from '@firn/attestation';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import {
  type AnvilInstance,
  createFirnClients,
  deployFirn,
  type FirnDeployment,
  joinVerifierSet,
  startAnvil,
} from '@firn/chain';
import { bytesToHex, type Hex, TEE_TYPES } from '@firn/core';
import {
  buildEnclaveBundle,
  createLogger,
  ensureRegistered,
  LivenessService,
  NodeDaemon,
  type NodeDaemonOptions,
} from '@firn/node';
import type { RunJobOptions } from '@firn/client';
import { VerifierDaemon } from '@firn/verifier';
import { parseEther } from 'viem';

/**
 * One devnet for a test file: anvil, the contracts, the bundle's measurement allow-listed, two
 * in-process verifier daemons (quorum 2), and one node daemon on the simulated TEE, Active.
 * Every log line of the node is captured for secrecy checks.
 */
export interface TestNetwork {
  anvil: AnvilInstance;
  deployment: FirnDeployment;
  node: NodeDaemon;
  dataDir: string;
  logs: string[];
  policy: AttestationPolicy;
  roots: { simulated: Uint8Array[] };
  rootPem: string;
  requester: { address: Hex; privateKey: Hex };
  operator: { address: Hex; privateKey: Hex };
  deployer: { address: Hex; privateKey: Hex };
  verifiers: VerifierDaemon[];
  bundleMeasurement: Hex;
  /** The node's liveness and reward service, when started with `liveness: true`. */
  liveness: LivenessService | undefined;
  stop(): Promise<void>;
}

/**
 * Build the enclave image (docs/enclave-image.md) into a fresh temp dir: the bundle with the ML
 * runtimes' native and wasm files beside it, nothing resolved from node_modules.
 */
export async function buildTestBundle(prefix: string) {
  return buildEnclaveBundle(join(mkdtempSync(join(tmpdir(), prefix)), 'enclave.mjs'));
}

export interface TestNetworkOptions {
  challengeWindow?: number;
  /** Seconds per reward epoch (default 3600: no epoch ends during most tests). */
  epochLength?: number;
  /** Seconds a node has to answer a liveness challenge (default: the contract's default for the epoch). */
  answerWindow?: number;
  /** Run the node's LivenessService (answers challenges, claims rewards, withdraws credits). Default false. */
  liveness?: boolean;
  /**
   * Run the verifier daemons' own liveness challengers (default true). False for a test that
   * issues every challenge itself: a challenger stopped after the set-up may already have
   * challenged the node in the moment it became Active.
   */
  challengeLiveness?: boolean;
  /** Reward pool deposit at deployment, wei (default 0). */
  poolDeposit?: bigint;
  /** Job market protocol fee, basis points (default 0). */
  protocolFeeBps?: number;
  /** A shared S3-compatible artifact store for the node (default none). */
  sharedArtifacts?: NodeDaemonOptions['sharedArtifacts'];
  /** The node's scheduler settings and storage quotas (default: the daemon's defaults). */
  scheduler?: NodeDaemonOptions['scheduler'];
  quotas?: NodeDaemonOptions['quotas'];
  /**
   * Called after each set-up step with what runs so far; a throw fails the set-up at that step
   * (for tests of the clean-up: startTestNetwork then stops all it started and rethrows).
   */
  afterStep?: (step: TestNetworkStep, started: TestNetworkStarted) => void | Promise<void>;
}

/** startTestNetwork's set-up steps, in order. */
export type TestNetworkStep = 'anvil' | 'deployed' | 'verifiers' | 'node' | 'registered';

/** What a set-up has started by a step (`node` from step 'node' on). */
export interface TestNetworkStarted {
  anvil: AnvilInstance;
  verifiers: readonly VerifierDaemon[];
  node?: NodeDaemon;
}

/**
 * Start the network of TestNetwork. When a step fails (a deployment refused, a verifier or the
 * node not starting, the registration not going through), everything started before it is stopped
 * in reverse order (the node and its enclave, the verifiers, anvil) and its temp dirs removed, then
 * the step's error is rethrown; an AggregateError also carries any clean-up that failed.
 */
export async function startTestNetwork(opts: TestNetworkOptions = {}): Promise<TestNetwork> {
  // Undone in reverse order when a later step fails: no anvil or enclave outlives a failed set-up.
  const undo: (() => unknown)[] = [];
  try {
    return await setUpTestNetwork(opts, undo);
  } catch (e) {
    const cleanupErrors: unknown[] = [];
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (c) {
        cleanupErrors.push(c);
      }
    }
    if (cleanupErrors.length === 0) throw e;
    throw new AggregateError(
      [e, ...cleanupErrors],
      'the test network set-up failed, and so did its clean-up',
    );
  }
}

async function setUpTestNetwork(opts: TestNetworkOptions, undo: (() => unknown)[]): Promise<TestNetwork> {
  const bundleDir = mkdtempSync(join(tmpdir(), 'firn-e2e-'));
  undo.push(() => rmSync(bundleDir, { recursive: true, force: true }));
  const bundle = await buildEnclaveBundle(join(bundleDir, 'enclave.mjs'));
  const anvil = await startAnvil({ accounts: 6 });
  undo.push(() => anvil.stop());
  const verifiers: VerifierDaemon[] = [];
  const started = (node?: NodeDaemon): TestNetworkStarted => ({
    anvil,
    verifiers,
    ...(node ? { node } : {}),
  });
  await opts.afterStep?.('anvil', started());
  const [deployer, requester, v1, v2, operator] = anvil.accounts as [
    AnvilInstance['accounts'][0],
    AnvilInstance['accounts'][0],
    AnvilInstance['accounts'][0],
    AnvilInstance['accounts'][0],
    AnvilInstance['accounts'][0],
  ];
  // Owned by a timelock with a 1 s delay; the allow-list and the verifiers' admission are set at
  // bootstrap, before the hand-over (tests that govern later go through governAndExecute).
  const deployment = await deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: deployer.privateKey,
    governanceDelay: 1,
    minNodeStake: parseEther('1'),
    minVerifierStake: parseEther('1'),
    unbondingPeriod: 600,
    challengeWindow: opts.challengeWindow ?? 60,
    slashAmount: parseEther('0.5'),
    claimBond: parseEther('0.01'),
    epochLength: opts.epochLength ?? 3600,
    ...(opts.answerWindow === undefined ? {} : { answerWindow: opts.answerWindow }),
    ...(opts.poolDeposit === undefined ? {} : { poolDeposit: opts.poolDeposit }),
    ...(opts.protocolFeeBps === undefined ? {} : { protocolFeeBps: opts.protocolFeeBps }),
    measurements: [{ teeType: TEE_TYPES.simulated, measurement: bytesToHex(bundle.measurement) }],
    verifiers: [v1.address, v2.address],
    pollingIntervalMs: 50,
  });
  await opts.afterStep?.('deployed', started());
  const root = await createSimulatedRoot();
  const roots = { simulated: [certificateDer(root.certificatePem)] };
  const quiet = { info() {}, warn() {}, error() {} };
  for (const v of [v1, v2]) {
    await joinVerifierSet(
      createFirnClients(anvil.rpcUrl, v.privateKey, deployment, { pollingIntervalMs: 50 }),
      parseEther('1'),
    );
    const d = new VerifierDaemon({
      rpcUrl: anvil.rpcUrl,
      verifierKey: v.privateKey,
      deployment,
      policy: DEV_POLICY,
      roots,
      logger: quiet,
      pollIntervalMs: 200,
      // The test network's node listens on 127.0.0.1.
      allowPrivateEndpoints: true,
      challengeLiveness: opts.challengeLiveness !== false,
    });
    d.start();
    undo.push(() => d.stop());
    verifiers.push(d);
  }
  await opts.afterStep?.('verifiers', started());
  const dataDir = mkdtempSync(join(tmpdir(), 'firn-e2e-node-'));
  undo.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const platformDir = mkdtempSync(join(tmpdir(), 'firn-e2e-platform-'));
  undo.push(() => rmSync(platformDir, { recursive: true, force: true }));
  const platformPath = join(platformDir, 'platform.json');
  writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(root)));
  const logs: string[] = [];
  const logger = createLogger({ component: 'node' }, { level: 'debug', write: (l) => logs.push(l) });
  const node = new NodeDaemon({
    dataDir,
    bundlePath: bundle.path,
    enclaveEnv: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger,
    chain: { rpcUrl: anvil.rpcUrl, deployment, operatorKey: operator.privateKey },
    ...(opts.sharedArtifacts ? { sharedArtifacts: opts.sharedArtifacts } : {}),
    ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
    ...(opts.quotas ? { quotas: opts.quotas } : {}),
  });
  // Stopped even when start fails half way (its enclave process may already run).
  undo.push(() => node.stop());
  await node.start();
  await opts.afterStep?.('node', started(node));
  await ensureRegistered(node, {
    rpcUrl: anvil.rpcUrl,
    operatorKey: operator.privateKey,
    deployment,
    stake: parseEther('2'),
    logger,
    pollIntervalMs: 100,
  });
  await opts.afterStep?.('registered', started(node));
  const liveness = opts.liveness
    ? new LivenessService(node, {
        rpcUrl: anvil.rpcUrl,
        operatorKey: operator.privateKey,
        deployment,
        logger,
        pollIntervalMs: 200,
      })
    : undefined;
  liveness?.start();
  return {
    anvil,
    deployment,
    node,
    dataDir,
    logs,
    policy: DEV_POLICY,
    roots,
    rootPem: root.certificatePem,
    requester,
    operator,
    deployer,
    verifiers,
    bundleMeasurement: bytesToHex(bundle.measurement),
    liveness,
    async stop() {
      liveness?.stop();
      for (const v of verifiers) v.stop();
      await node.jobs?.drain();
      await node.stop();
      await anvil.stop();
    },
  };
}

/** Every file under a directory, recursively (for storage scans). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Move anvil's clock forward and mine a block. */
export async function increaseTime(rpcUrl: string, seconds: number): Promise<void> {
  for (const [method, params] of [
    ['evm_increaseTime', [seconds]],
    ['evm_mine', []],
  ] as const) {
    await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    });
  }
}

/** The devnet state file shape for this network (what `firn devnet --state-file` writes). */
export function stateOf(net: TestNetwork, rootPem: string) {
  return {
    rpcUrl: net.anvil.rpcUrl,
    chainId: net.deployment.chainId,
    contracts: {
      registry: net.deployment.registry,
      verifierSet: net.deployment.verifierSet,
      jobMarket: net.deployment.jobMarket,
      dataLedger: net.deployment.dataLedger,
      rewards: net.deployment.rewards!,
      timelock: net.deployment.timelock!,
    },
    deployBlock: net.deployment.deployBlock.toString(),
    simulatedRootPem: rootPem,
    measurement: net.bundleMeasurement,
    nodes: [
      {
        url: net.node.url,
        enclaveId: net.node.identity!.enclaveId,
        enclaveAddress: net.node.identity!.enclaveAddress,
        pid: 0,
      },
    ],
    verifiers: [],
    accounts: { requester: net.requester },
  };
}

/** The requester half of RunJobOptions on this network: RPC, deployment, key, KEM key, policy, roots. */
export function requesterOptions(
  net: TestNetwork,
  requesterKem: { privateKey: Uint8Array; publicKey: Uint8Array },
) {
  return {
    rpcUrl: net.anvil.rpcUrl,
    deployment: net.deployment,
    requesterKey: net.requester.privateKey,
    requesterKem,
    policy: net.policy,
    roots: net.roots,
  };
}

/** A one-row input `x` = [[1, 2, 3]] for a 3-feature model, as the JSON tensor file a job takes. */
export const TINY_INFERENCE_INPUT = new TextEncoder().encode(
  JSON.stringify({ x: { dims: [1, 3], type: 'float32', data: [1, 2, 3] } }),
);

/** The inputs of an inference job: `model` (ONNX bytes) and TINY_INFERENCE_INPUT. */
export function inferenceInputs(model: Uint8Array): RunJobOptions['inputs'] {
  return [
    { role: 'model', bytes: model, contentType: 'application/onnx' },
    { role: 'input', bytes: TINY_INFERENCE_INPUT, contentType: 'application/json' },
  ];
}

/**
 * runJob options for an inference of `model` on TINY_INFERENCE_INPUT by this network's requester
 * (escrow 1 wei); `extra` replaces any of them.
 */
export function inferenceJobOptions(
  net: TestNetwork,
  requesterKem: { privateKey: Uint8Array; publicKey: Uint8Array },
  model: Uint8Array,
  extra: Partial<RunJobOptions> = {},
): RunJobOptions {
  return {
    ...requesterOptions(net, requesterKem),
    kind: 'inference',
    inputs: inferenceInputs(model),
    params: {},
    escrow: 1n,
    ...extra,
  };
}

/** The scope node-API requests to this network's node are signed for (chain, market, Enclave ID). */
export function requestScope(net: TestNetwork) {
  return {
    chainId: net.deployment.chainId,
    jobMarket: net.deployment.jobMarket,
    enclaveId: net.node.identity!.enclaveId,
  };
}
