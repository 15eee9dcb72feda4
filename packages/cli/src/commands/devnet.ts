import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createFirnClients, listNodes } from '@firn/chain';
import { FirnError } from '@firn/core';
import type { Command } from 'commander';
import { runTwoOwnerInferenceDemo } from '../devnet/demo/grantDemo.ts';
import { runInferenceDemo, runRewardsDemo } from '../devnet/demo/inferenceDemo.ts';
import { runTrainingDemo } from '../devnet/demo/trainingDemo.ts';
import { startDevnet } from '../devnet/startDevnet.ts';
import { exitCodeOf, printError } from '../output.ts';
import { nodeGpuCount, renderNodeTable } from './nodes.ts';

export interface DevnetCommandOptions {
  dir: string;
  nodes: string;
  verifiers: string;
  gpuNodes: string;
  stateFile?: string;
  demo: boolean;
  readyTimeout: string;
  exitAfterDemo?: boolean;
  dashboard?: boolean;
  dashboardPort?: string;
  /** App folders to host, one node each (`--app DIR`, repeatable). */
  app?: string[];
}

/** `flag`'s value as an integer in [min, max], else E_INVALID_INPUT naming the flag (exit 3). */
function intFlag(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new FirnError('E_INVALID_INPUT', `${flag} ${value}: expected a whole number from ${min} to ${max}`);
  return n;
}

/**
 * Refuse a `--state-file` that cannot be written, or that would replace a file which is not a devnet
 * state (the user's own file), before anything starts.
 */
function checkStateFile(path: string): void {
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(path);
  } catch {}
  if (st?.isDirectory()) throw new FirnError('E_INVALID_INPUT', `--state-file ${path}: is a directory`);
  if (st) {
    let state: unknown;
    try {
      state = JSON.parse(readFileSync(path, 'utf8'));
    } catch {}
    const s = state as { rpcUrl?: unknown; contracts?: unknown } | undefined;
    if (!s || typeof s.rpcUrl !== 'string' || typeof s.contracts !== 'object')
      throw new FirnError(
        'E_CONFLICT',
        `--state-file ${path} exists and is not a devnet state file; remove it or choose another path`,
      );
    return;
  }
  const parent = dirname(path);
  if (!existsSync(parent) || !statSync(parent).isDirectory())
    throw new FirnError('E_NOT_FOUND', `--state-file ${path}: the folder ${parent} does not exist`);
}

/** The devnet flags npm keeps for itself from `npm start --flag` (as npm_config_<flag>). */
const NPM_SWALLOWED = [
  'dir',
  'nodes',
  'verifiers',
  'gpu-nodes',
  'state-file',
  'demo',
  'exit-after-demo',
  'ready-timeout',
  'dashboard',
  'dashboard-port',
  'app',
];

/** `npm start --exit-after-demo` runs `firn devnet` without the flag: refuse, naming `npm start -- …`. */
function refuseNpmSwallowedFlags(env: NodeJS.ProcessEnv = process.env): void {
  if (env['npm_lifecycle_event'] !== 'start') return;
  const lost = NPM_SWALLOWED.filter((f) => env[`npm_config_${f.replaceAll('-', '_')}`] !== undefined);
  if (lost.length > 0) {
    const flags = lost.map((f) =>
      env[`npm_config_${f.replaceAll('-', '_')}`] === '' ? `--no-${f}` : `--${f}`,
    );
    throw new FirnError(
      'E_INVALID_INPUT',
      `npm kept ${flags.join(' ')} for itself, so the devnet would start without it: run \`npm start -- ${flags.join(' ')}\``,
    );
  }
}

export async function runDevnet(o: DevnetCommandOptions): Promise<void> {
  const t0 = Date.now();
  refuseNpmSwallowedFlags();
  const log = (line: string) => process.stdout.write(`[devnet] ${line}\n`);
  const nodeCount = intFlag('--nodes', o.nodes, 0, 64);
  const verifiers = intFlag('--verifiers', o.verifiers, 1, 32);
  const gpuNodes = intFlag('--gpu-nodes', o.gpuNodes, 0, Math.max(nodeCount, 1));
  const readyTimeout = Number(o.readyTimeout);
  if (!/^\s*[\d.]+\s*$/.test(o.readyTimeout) || !(readyTimeout > 0))
    throw new FirnError(
      'E_INVALID_INPUT',
      `--ready-timeout ${o.readyTimeout}: expected a number of seconds above 0`,
    );
  const dashboardPort = intFlag('--dashboard-port', o.dashboardPort ?? '0', 0, 65535);
  if (o.stateFile !== undefined) checkStateFile(resolve(o.stateFile));
  const net = await startDevnet({
    dir: o.dir,
    nodes: nodeCount,
    verifiers,
    gpuNodes,
    readyTimeout,
    ...(o.app && o.app.length > 0 ? { apps: o.app } : {}),
    log,
    dashboard: o.dashboard !== false,
    dashboardPort,
  });
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping every process');
    await net.stop();
    process.exit(code);
  };
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));

  try {
    await report();
  } catch (e) {
    // The network is up: stop every child (anvil, key broker, verifiers, nodes) before failing.
    await net.stop();
    throw e;
  }
  async function report(): Promise<void> {
    const nodes = await listNodes(createFirnClients(net.anvil.rpcUrl, undefined, net.deployment));
    log(`all ${net.nodes.length} nodes Active after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const gpus = await Promise.all(nodes.map((n) => nodeGpuCount(n.endpoint)));
    process.stdout.write(`\n${renderNodeTable(nodes, gpus)}\n\n`);
    for (const [i, a] of net.apps.entries())
      log(
        `app ${a.name} ${a.version}: measurement ${a.measurement}, workloads ${a.workloads.join(', ')}, node ${net.nodes[net.nodes.length - net.apps.length + i]!.url}`,
      );
    {
      // Under the devnet folder by default (gitignored), beside the keys it names.
      const stateFile = resolve(o.stateFile ?? join(net.dir, 'state.json'));
      // It holds the devnet accounts' private keys: owner-only, like the key files.
      writeFileSync(stateFile, JSON.stringify(net.state, null, 2), { mode: 0o600 });
      chmodSync(stateFile, 0o600); // `mode` applies only when the file is created
      log(`state written to ${stateFile} (use it as --devnet ${stateFile})`);
    }
  }
  log(`RPC ${net.anvil.rpcUrl}  registry ${net.deployment.registry}  market ${net.deployment.jobMarket}`);
  log(`logs in ${resolve(net.dir, 'logs')}`);

  if (o.demo) {
    try {
      const print = (l: string) => process.stdout.write(`${l}\n`);
      await runInferenceDemo(net.state, print);
      await runTwoOwnerInferenceDemo(net.state, print);
      await runTrainingDemo(net.state, print);
      await runRewardsDemo(net.state, print);
    } catch (e) {
      printError(e, false);
      if (o.exitAfterDemo) return shutdown(1);
    }
  }
  if (o.exitAfterDemo) return shutdown(0);
  log('network is up; press Ctrl-C to stop');
}

export function registerDevnet(program: Command): void {
  program
    .command('devnet')
    .description(
      'run a local firn network: anvil, contracts, nodes on the simulated TEE, verifiers, demo jobs',
    )
    .option(
      '--dir <dir>',
      'working directory: keys, logs, state.json (wiped at start; refused while another devnet runs in it)',
      '.devnet',
    )
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--verifiers <n>', 'number of verifiers', '2')
    .option('--gpu-nodes <n>', 'nodes (the last ones) with a simulated GPU (composite evidence)', '1')
    .option('--state-file <path>', 'where to write the network state JSON (default DIR/state.json)')
    .option('--no-demo', 'skip the confidential inference and training demo')
    .option('--exit-after-demo', 'stop the network after the demo instead of staying up')
    .option('--ready-timeout <s>', 'seconds to wait for every node to become Active', '90')
    .option('--no-dashboard', 'do not serve the web dashboard')
    .option('--dashboard-port <n>', 'port of the web dashboard (0: any free port)', '0')
    .option(
      '--app <dir>',
      'host a developer app (repeatable): its own image, node, Enclave ID and registration',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .action(async (o: DevnetCommandOptions) => {
      try {
        await runDevnet(o);
      } catch (e) {
        printError(e, false);
        process.exit(exitCodeOf(e));
      }
    });
}
