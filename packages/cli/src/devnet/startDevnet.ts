import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  createSimulatedPlatform,
  createSimulatedRoot,
  createSimulatedGpu,
  createSimulatedGpuRoot,
} from '@firn/sim';
import {
  type AnvilInstance,
  createFirnClients,
  deployFirn,
  type FirnDeployment,
  type FirnNode,
  joinVerifierSet,
  listNodes,
  NodeStatus,
  startAnvil,
} from '@firn/chain';
import { bytesToHex, FirnError, type Hex, repoRoot, TEE_TYPES } from '@firn/core';
import type { DevnetStateFile } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { type DashboardServer, serveDashboard } from '@firn/dashboard';
import { buildEnclaveBundle } from '@firn/node';
import { parseEther } from 'viem';
import { deploymentToJson } from '../chainArgs.ts';
import { buildDevnetApps, type DevnetApp } from './devnetApps.ts';
import { startDevnetKms, stopDevnetKms } from './startKms.ts';

export interface DevnetOptions {
  dir: string;
  nodes: number;
  verifiers: number;
  /** How many nodes (the last ones) get a simulated GPU, for composite CPU+GPU evidence. */
  gpuNodes?: number;
  /** Seconds to wait for every node to become Active. */
  readyTimeout: number;
  /** App folders to host (`--app DIR`, repeatable): each gets its own image, node and registration. */
  apps?: string[];
  log: (line: string) => void;
  /** Serve the web dashboard (default true); its URL goes to the state as `dashboardUrl`. */
  dashboard?: boolean;
  /** Port of the dashboard (default 0: a free port). */
  dashboardPort?: number;
  /** Extra `firn node start` flags for every node (e.g. ['--min-claim-seconds', '20'] in tests). */
  nodeArgs?: string[];
  /** Node.js flags for every node and verifier process (e.g. ['--cpu-prof'] to profile them). */
  execArgv?: string[];
  /**
   * Start each node only once the previous one has registered (default false: all at once). On a
   * loaded machine ten enclaves starting together can miss their start-up deadline.
   */
  staggerNodes?: boolean;
  /**
   * Seconds per block (interval mining, e.g. 0.25 as Arbitrum One, 2 as Base); absent means a
   * block per transaction (anvil's automine, what tests want). anvil's cost of mining a block grows
   * with the chain's length, so a long-running devnet under load runs better on a block time.
   */
  blockTimeS?: number;
  /**
   * Route every devnet client (deployment, nodes, verifiers, dashboard, the state file's
   * `rpcUrl`) through a URL in front of anvil: called with anvil's own URL, it returns the one
   * the clients use (e.g. a counting JSON-RPC proxy that measures which calls load the chain).
   * `Devnet.anvil.rpcUrl` is then that URL. Default: anvil's URL.
   */
  rpcVia?: (anvilRpcUrl: string) => Promise<string>;
}

export interface DevnetNode {
  index: number;
  url: string;
  port: number;
  dataDir: string;
  keyFile: string;
  platformFile: string;
  child: ChildProcess;
  args: string[];
}

export interface Devnet {
  anvil: AnvilInstance;
  deployment: FirnDeployment;
  dir: string;
  nodes: DevnetNode[];
  verifiers: { address: Hex; child: ChildProcess }[];
  state: DevnetState;
  /** The hosted developer apps (devnetApps.ts), in `--app` order. */
  apps: DevnetApp[];
  stop(): Promise<void>;
}

/** The state file `firn devnet --state-file` writes: the client's DevnetStateFile, and more. */
export interface DevnetState extends DevnetStateFile {
  deployBlock: string;
  simulatedRootFile: string;
  simulatedGpuRootFile: string;
  nodes: (DevnetStateFile['nodes'][number] & { operator: Hex; restart: string[] })[];
  accounts: {
    deployer: { address: Hex; privateKey: Hex };
    requester: { address: Hex; privateKey: Hex };
    /** A second funded party (e.g. the other data owner of a clean room). */
    dataOwner?: { address: Hex; privateKey: Hex };
  };
  /** The hosted developer apps and the endpoints of the nodes that run them. */
  apps?: (DevnetApp & { nodes: string[] })[];
  /** The web dashboard serving this devnet (apps/dashboard), when started. */
  dashboardUrl?: string;
}

/** The devnet's governance delay and reward clock, seconds. */
export const DEVNET_ECONOMICS = { governanceDelay: 3, epochLength: 15, answerWindow: 5 } as const;

const FIRN_BIN = () => join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');

function spawnFirn(
  args: string[],
  env: Record<string, string>,
  logFile: string,
  execArgv: readonly string[] = [],
): ChildProcess {
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [...execArgv, FIRN_BIN(), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  return child;
}

/** Wait until `count` nodes are registered (any status); E_TIMEOUT after `timeoutS`. */
async function waitRegistered(
  rpcUrl: string,
  deployment: FirnDeployment,
  count: number,
  timeoutS: number,
  check: () => void = () => {},
): Promise<void> {
  const reader = createFirnClients(rpcUrl, undefined, deployment, { pollingIntervalMs: 50 });
  const until = Date.now() + timeoutS * 1000;
  while ((await listNodes(reader)).length < count) {
    check();
    if (Date.now() > until)
      throw new FirnError('E_TIMEOUT', `the ${count} regular nodes did not register within ${timeoutS}s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Bring up a whole firn network on this machine: anvil, the contracts, verifiers and nodes on the
 * simulated TEE, each node and verifier a separate process, and wait until every node is Active.
 */
export async function startDevnet(o: DevnetOptions): Promise<Devnet> {
  const dir = resolve(o.dir);
  // Refused while another devnet runs here: wiping its folder would take its keys and logs.
  const releaseLock = acquireDevnetLock(dir);
  let anvil: AnvilInstance;
  try {
    // Wipe only what a devnet writes: `--dir .` or `--dir ~` must not delete the user's files.
    const foreign = readdirSync(dir).filter((e) => !DEVNET_ENTRIES.has(e) && isLockScratch(e) === undefined);
    if (foreign.length > 0)
      throw new FirnError(
        'E_CONFLICT',
        `--dir ${dir} holds files a devnet did not write (${foreign.slice(0, 3).join(', ')}); it is wiped at start, so pass a new or empty folder`,
      );
    // Names alone do not tell a devnet's `keys/` or `apps/` from the user's: wipe only a folder a
    // devnet marked (simulated-root.pem: one written before the mark existed).
    // A lock scratch file of a live start is its own (a takeover in flight); a dead one's is left over.
    const entries = readdirSync(dir).filter((e) => {
      if (e === LOCK_FILE) return false;
      const pid = isLockScratch(e);
      return pid === undefined || !alive(pid);
    });
    if (entries.length > 0 && !entries.includes(DEVNET_MARK) && !entries.includes('simulated-root.pem'))
      throw new FirnError(
        'E_CONFLICT',
        `--dir ${dir} holds ${entries.slice(0, 3).join(', ')} but no devnet wrote it (no ${DEVNET_MARK}); it is wiped at start, so pass a new or empty folder`,
      );
    for (const e of entries) rmSync(join(dir, e), { recursive: true, force: true });
    writeFileSync(join(dir, DEVNET_MARK), 'a firn devnet folder: wiped at each devnet start\n', {
      mode: 0o600,
    });
    for (const d of ['logs', 'keys', 'platforms', 'nodes'])
      mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
    o.log('building the enclave program bundle');
    // One node per hosted app after the regular ones: every node gets its own funded account.
    anvil = await startAnvilRetrying(12 + o.nodes + (o.apps?.length ?? 0) + o.verifiers, o.blockTimeS);
    if (o.rpcVia) {
      const started = anvil;
      try {
        anvil = { ...started, rpcUrl: await o.rpcVia(started.rpcUrl) };
      } catch (e) {
        await started.stop();
        throw e;
      }
    }
  } catch (e) {
    releaseLock();
    throw e;
  }
  const log = o.log;
  const bundle = await buildEnclaveBundle();
  const measurement = bytesToHex(bundle.measurement);
  log(`enclave measurement without a key-broker pin ${measurement}`);
  const apps = await buildDevnetApps(o.apps ?? [], join(dir, 'apps'), log);
  // One node per app, after the regular ones.
  const nodeCount = o.nodes + apps.length;

  const children: ChildProcess[] = [];
  let dashboard: Promise<DashboardServer> | undefined;
  const stop = async () => {
    await dashboard?.then(
      (d) => d.close(),
      () => {},
    );
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await anvil.stop();
    releaseLock();
  };
  try {
    const root = await createSimulatedRoot();
    const rootFile = join(dir, 'simulated-root.pem');
    writeFileSync(rootFile, root.certificatePem);
    // The root's private key plays the vendor's role; it stays in the devnet dir, never with nodes.
    writeFileSync(join(dir, 'keys', 'simulated-root.json'), JSON.stringify(root), { mode: 0o600 });
    // The first-party nodes take their sealing key from the key broker, whose identity their image
    // pins (measured, decision 1710): the broker starts once to create its sealed master secret and
    // name its address, the nodes' image is built with that pin, and the broker restarts below
    // (same sealed master, same address) releasing to that image's measurement, with the chain's
    // allow-list. Every first-party node runs that one image, so a job posted for the devnet's
    // measurement can run on (and be retried on) any of them.
    const firstKms = await startDevnetKms({
      dir,
      root,
      rootFile,
      measurement,
      spawnFirn: (args, logFile) => spawnFirn(args, {}, logFile),
    });
    children.push(firstKms.child);
    await stopDevnetKms(firstKms.child);
    log(`building the enclave image that pins key broker ${firstKms.address}`);
    const kmsBundle = await buildEnclaveBundle(join(dir, 'kms-image', 'app', 'enclave.mjs'), {
      keyBroker: firstKms.address,
    });
    const kmsMeasurement = bytesToHex(kmsBundle.measurement);
    log(
      `enclave measurement ${kmsMeasurement} (the first-party nodes' image, pinning key broker ${firstKms.address})`,
    );
    const [deployer, requester, ...rest] = anvil.accounts;
    const verifierAccounts = rest.slice(0, o.verifiers);
    const operatorAccounts = rest.slice(o.verifiers, o.verifiers + nodeCount);
    const dataOwner = rest[o.verifiers + nodeCount]!;
    log(`anvil on ${anvil.rpcUrl}; deploying contracts`);
    // Every contract is handed to a timelock; the devnet's delay is short and the deployer
    // proposes and executes (firn gov). The allow-list and the verifiers' admission are set at
    // bootstrap. Short reward epochs so the demo shows a node paid for its liveness.
    const deployment = await deployFirn({
      rpcUrl: anvil.rpcUrl,
      deployerKey: deployer!.privateKey,
      governanceDelay: DEVNET_ECONOMICS.governanceDelay,
      minNodeStake: parseEther('1'),
      minVerifierStake: parseEther('1'),
      unbondingPeriod: 600,
      challengeWindow: 60,
      slashAmount: parseEther('0.5'),
      claimBond: parseEther('0.001'),
      registrationFee: parseEther('0.01'),
      protocolFeeBps: 500,
      epochLength: DEVNET_ECONOMICS.epochLength,
      answerWindow: DEVNET_ECONOMICS.answerWindow,
      epochBudgetBps: 5000,
      poolDeposit: parseEther('1'),
      measurements: [
        { teeType: TEE_TYPES.simulated, measurement },
        { teeType: TEE_TYPES.simulated, measurement: kmsMeasurement },
        ...apps.map((a) => ({ teeType: TEE_TYPES.simulated, measurement: a.measurement })),
      ],
      verifiers: verifierAccounts.map((a) => a.address),
      pollingIntervalMs: 50,
    });
    // The web dashboard builds (esbuild, its own process) while the nodes start; awaited below.
    if (o.dashboard !== false) {
      // The devnet's nodes listen on 127.0.0.1: its dashboard relays to them (decision 1834).
      dashboard = serveDashboard({
        rpcUrl: anvil.rpcUrl,
        deployment,
        port: o.dashboardPort ?? 0,
        allowPrivateEndpoints: true,
      });
      dashboard.catch(() => {}); // a failure surfaces where it is awaited
    }
    const deploymentFile = join(dir, 'deployment.json');
    writeFileSync(
      deploymentFile,
      JSON.stringify({ rpcUrl: anvil.rpcUrl, ...deploymentToJson(deployment) }, null, 2),
    );

    const gpuRoot = await createSimulatedGpuRoot();
    const gpuRootFile = join(dir, 'simulated-gpu-root.pem');
    writeFileSync(gpuRootFile, gpuRoot.rootCertPem);

    // The key broker: node 1 takes its sealing key from it instead of its platform secret. It
    // reads the registry's allow-list too, so `firn gov revoke-measurement` stops key release.
    const kms = await startDevnetKms({
      dir,
      root,
      rootFile,
      measurement: kmsMeasurement,
      deploymentFile,
      spawnFirn: (args, logFile) => spawnFirn(args, {}, logFile),
    });
    children.push(kms.child);
    if (kms.address !== firstKms.address)
      throw new FirnError(
        'E_CONFLICT',
        'the key broker restarted with another identity than the one node 1 pins',
      );
    log(`key broker on ${kms.url} (identity ${kms.address})`);

    const verifiers: Devnet['verifiers'] = [];
    for (const [i, acct] of verifierAccounts.entries()) {
      await joinVerifierSet(
        createFirnClients(anvil.rpcUrl, acct.privateKey, deployment, { pollingIntervalMs: 50 }),
        parseEther('1'),
      );
      const keyFile = join(dir, 'keys', `verifier-${i + 1}.key`);
      writeFileSync(keyFile, acct.privateKey, { mode: 0o600 });
      const child = spawnFirn(
        [
          'verifier',
          'start',
          '--deployment',
          deploymentFile,
          '--key-file',
          keyFile,
          '--policy',
          'dev',
          '--sim-root',
          rootFile,
          '--sim-gpu-root',
          gpuRootFile,
          '--poll-ms',
          '300',
          // The devnet's nodes listen on 127.0.0.1.
          '--allow-private-endpoints',
        ],
        {},
        join(dir, 'logs', `verifier-${i + 1}.log`),
        o.execArgv,
      );
      children.push(child);
      verifiers.push({ address: acct.address, child });
    }
    log(
      `${verifiers.length} verifiers joined (quorum: > 2/3 of their stake); governance: timelock ${deployment.timelock} with a ${DEVNET_ECONOMICS.governanceDelay} s delay; reward epochs of ${DEVNET_ECONOMICS.epochLength} s`,
    );

    const nodes: DevnetNode[] = [];
    for (const [i, acct] of operatorAccounts.entries()) {
      const index = i + 1;
      // App nodes register after the regular ones, so a client choosing "the first Active node"
      // (the demo's jobs) still lands on a node of the first-party image.
      if (index === o.nodes + 1) await waitRegistered(anvil.rpcUrl, deployment, o.nodes, o.readyTimeout);
      else if (o.staggerNodes && index > 1)
        await waitRegistered(anvil.rpcUrl, deployment, index - 1, o.readyTimeout, () => {
          for (const n of nodes)
            if (n.child.exitCode !== null)
              throw new FirnError(
                'E_UNAVAILABLE',
                `node ${n.index} exited (see ${join(dir, 'logs', `node-${n.index}.log`)})`,
              );
        });
      const platformFile = join(dir, 'platforms', `machine-${index}.json`);
      writeFileSync(platformFile, JSON.stringify(await createSimulatedPlatform(root)), { mode: 0o600 });
      const keyFile = join(dir, 'keys', `operator-${index}.key`);
      writeFileSync(keyFile, acct.privateKey, { mode: 0o600 });
      // Port 0: the node binds any free port itself and registers the URL it got, so no port is
      // chosen here and bound later by the child (the race that failed one start in twelve).
      const dataDir = join(dir, 'nodes', `node-${index}`);
      const args = [
        'node',
        'start',
        '--deployment',
        deploymentFile,
        '--data-dir',
        dataDir,
        '--port',
        '0',
        '--sim-platform',
        platformFile,
        '--key-file',
        keyFile,
        '--bundle',
        index > o.nodes ? apps[index - o.nodes - 1]!.entry : kmsBundle.path,
        '--stake',
        '2',
      ];
      if (index <= o.nodes) args.push('--kms-url', kms.url, '--kms-address', kms.address);
      args.push(...(o.nodeArgs ?? []));
      if (index <= o.nodes && index > o.nodes - (o.gpuNodes ?? 1)) {
        const gpu = await createSimulatedGpu({
          root: gpuRoot,
          driverVersion: '570.124.06',
          vbiosVersion: '96.00.9F.00.04',
        });
        const gpuFile = join(dir, 'platforms', `machine-${index}-gpus.json`);
        writeFileSync(gpuFile, JSON.stringify([gpu.state]), { mode: 0o600 });
        args.push('--sim-gpus', gpuFile);
      }
      const child = spawnFirn(args, {}, join(dir, 'logs', `node-${index}.log`), o.execArgv);
      children.push(child);
      nodes.push({
        index,
        url: '',
        port: 0,
        dataDir,
        keyFile,
        platformFile,
        child,
        args,
      });
    }
    log(`${nodes.length} nodes starting; waiting for verifier approvals`);

    const reader = createFirnClients(anvil.rpcUrl, undefined, deployment, { pollingIntervalMs: 50 });
    const until = Date.now() + o.readyTimeout * 1000;
    let active: FirnNode[] = [];
    for (;;) {
      for (const n of nodes)
        if (n.child.exitCode !== null)
          throw new FirnError(
            'E_UNAVAILABLE',
            `node ${n.index} exited (see ${join(dir, 'logs', `node-${n.index}.log`)})`,
          );
      const all = await listNodes(reader);
      active = all.filter((n) => n.status === NodeStatus.Active);
      const rejected = all.filter((n) => n.status === NodeStatus.Rejected);
      if (rejected.length > 0)
        throw new FirnError('E_POLICY_REJECTED', `${rejected.length} node(s) were refused by the verifiers`);
      if (active.length >= nodes.length) {
        // Each node registered the URL of the port it bound; find it by its operator account.
        for (const n of nodes) {
          const op = operatorAccounts[n.index - 1]!.address.toLowerCase();
          const reg = all.find((x) => x.operator.toLowerCase() === op);
          if (reg) {
            n.url = reg.endpoint;
            n.port = Number(new URL(reg.endpoint).port);
          }
        }
        break;
      }
      if (Date.now() > until)
        throw new FirnError(
          'E_TIMEOUT',
          `only ${active.length}/${nodes.length} nodes Active after ${o.readyTimeout}s`,
        );
      await new Promise((r) => setTimeout(r, 300));
    }

    // The requester's KEM key, which the demo seals its outputs to: loaded in the dashboard it opens them there.
    const requesterKem = await generateKemKeyPair();
    let dashboardUrl: string | undefined;
    if (dashboard) {
      const dash = await dashboard;
      dashboardUrl = dash.url;
      log(`dashboard on ${dash.url} (built in ${dash.buildMs} ms)`);
    }

    const byUrl = new Map(active.map((n) => [n.endpoint, n]));
    const state: DevnetState = {
      rpcUrl: anvil.rpcUrl,
      chainId: deployment.chainId,
      contracts: {
        registry: deployment.registry,
        verifierSet: deployment.verifierSet,
        jobMarket: deployment.jobMarket,
        dataLedger: deployment.dataLedger,
        rewards: deployment.rewards!,
        timelock: deployment.timelock!,
      },
      deployBlock: deployment.deployBlock.toString(),
      simulatedRootPem: root.certificatePem,
      simulatedRootFile: rootFile,
      simulatedGpuRootFile: gpuRootFile,
      simulatedGpuRootPem: gpuRoot.rootCertPem,
      measurement: kmsMeasurement,
      nodes: nodes.map((n) => {
        const c = byUrl.get(n.url);
        return {
          url: n.url,
          enclaveId: (c?.enclaveId ?? '0x') as Hex,
          enclaveAddress: (c?.enclaveAddress ?? '0x') as Hex,
          operator: operatorAccounts[n.index - 1]!.address,
          pid: n.child.pid ?? 0,
          // Restarted on the port it got, so its registered endpoint stays right.
          restart: [
            process.execPath,
            FIRN_BIN(),
            ...n.args.map((a, i) => (n.args[i - 1] === '--port' ? new URL(n.url).port : a)),
          ],
        };
      }),
      verifiers: verifiers.map((v) => ({ address: v.address, pid: v.child.pid ?? 0 })),
      accounts: { deployer: deployer!, requester: requester!, dataOwner },
      requesterKem: {
        privateKey: bytesToHex(requesterKem.privateKey),
        publicKey: bytesToHex(requesterKem.publicKey),
      },
      ...(dashboardUrl === undefined ? {} : { dashboardUrl }),
      ...(apps.length === 0
        ? {}
        : { apps: apps.map((a, i) => ({ ...a, nodes: [nodes[o.nodes + i]!.url] })) }),
    };
    return { anvil, deployment, dir, nodes, verifiers, state, apps, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The lock file in the devnet folder: the pid of the `firn devnet` that owns the folder. */
export const LOCK_FILE = 'devnet.lock';

/** The mark a devnet leaves in its folder: only a marked folder is wiped at the next start. */
const DEVNET_MARK = '.firn-devnet';

/** What a devnet writes in its folder: the only entries a new start may wipe. */
const DEVNET_ENTRIES = new Set([
  LOCK_FILE,
  DEVNET_MARK,
  'apps',
  'deployment.json',
  'keys',
  'kms',
  'kms-image',
  'logs',
  'nodes',
  'platforms',
  'simulated-gpu-root.pem',
  'simulated-root.pem',
  'state.json',
]);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as { code?: string }).code === 'EPERM';
  }
}

/**
 * A private name next to the lock (`devnet.lock.<pid>.<12 hex>`): where this process writes its new
 * lock before linking it in, and where it moves a stale lock to inspect it. Such names are a
 * devnet's own (a crashed start may leave one); see {@link isLockScratch}.
 */
function lockScratch(file: string): string {
  return `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
}

const LOCK_SCRATCH = /^devnet\.lock\.(\d+)\.[0-9a-f]{12}$/;

/** Whether a folder entry is a lock scratch name; returns its owner's pid, or undefined. */
function isLockScratch(entry: string): number | undefined {
  const m = LOCK_SCRATCH.exec(entry);
  return m ? Number(m[1]) : undefined;
}

/** The pid a lock file names; 0 when it names none (garbage or empty: nobody owns it). */
function lockPid(path: string): number {
  const pid = Number(readFileSync(path, 'utf8').trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 0;
}

function held(dir: string, pid: number): FirnError {
  return new FirnError(
    'E_CONFLICT',
    `a devnet is already running in ${dir} (pid ${pid}); stop it (Ctrl-C) or pass another --dir`,
    { details: { pid } },
  );
}

/**
 * Take the devnet folder for this process: `<dir>/devnet.lock` holding our pid.
 *
 * - The lock appears whole: our pid is written to a scratch file that is then hard-linked to
 *   `devnet.lock` (`link(2)` fails with EEXIST if the name is taken), so no reader sees it empty.
 * - A lock whose pid is alive refuses with E_CONFLICT naming the folder and the pid.
 * - A stale lock (its process is gone) is taken over atomically: it is renamed to a scratch name
 *   (only one of several racing starts can move a given file), and the moved file is read again.
 *   If it still names a dead pid, it is deleted and the lock is created as above. If it names a
 *   live pid, another start took the stale lock over between our read and our rename: it is put
 *   back with `link(2)` and this start refuses. See docs/decisions/1580-devnet-lock-takeover.md.
 *
 * Returns the release function (idempotent): it deletes the lock only while it still holds our pid.
 * @throws FirnError E_CONFLICT when another live devnet holds the folder, or the lock keeps changing.
 */
/**
 * mkdir -p one level at a time: Node 20's recursive mkdir retries an ENOENT on a folder whose
 * parent exists (/proc, some FUSE mounts) for ever; here the error names the folder.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) mkdirSync(d, { mode: 0o700 });
}

export function acquireDevnetLock(dir: string): () => void {
  makeDirs(dir);
  const file = join(dir, LOCK_FILE);
  const mine = lockScratch(file);
  writeFileSync(mine, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, file);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          try {
            if (lockPid(file) === process.pid) unlinkSync(file);
          } catch {}
        };
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') throw e;
      }
      let pid: number;
      try {
        pid = lockPid(file);
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      if (pid > 0 && alive(pid)) throw held(dir, pid);
      // Stale: move it aside, then look at what we moved (it may be another start's fresh lock).
      const grave = lockScratch(file);
      try {
        renameSync(file, grave);
      } catch (e) {
        if ((e as { code?: string }).code === 'ENOENT') continue; // another start moved it
        throw e;
      }
      const moved = lockPid(grave);
      if (moved > 0 && alive(moved)) {
        // A live devnet's lock: put it back. link(2) refuses if a third start took the name
        // meanwhile; either way this start does not run.
        try {
          linkSync(grave, file);
        } catch {}
        rmSync(grave, { force: true });
        throw held(dir, moved);
      }
      rmSync(grave, { force: true }); // stale: its process is gone
    }
    throw new FirnError(
      'E_CONFLICT',
      `cannot take the devnet lock ${file}: it kept changing (other devnets starting in ${dir}?); try again`,
    );
  } finally {
    rmSync(mine, { force: true });
  }
}

/** A start that fails (anvil exits, or is slow to answer on a loaded machine) is tried again. */
async function startAnvilRetrying(accounts: number, blockTime?: number): Promise<AnvilInstance> {
  let last: unknown;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await startAnvil({ accounts, ...(blockTime === undefined ? {} : { blockTime }) });
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
