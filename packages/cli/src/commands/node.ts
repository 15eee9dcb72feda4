import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  buildEnclaveBundle,
  createLogger,
  defaultBundlePath,
  ensureRegistered,
  NodeDaemon,
} from '@firn/node';
import { InvalidInputError } from '@firn/core';
import type { Command } from 'commander';
import { etherArg, readKey, resolveChain } from '../chainArgs.ts';
import { type CollateralArgs, collateralSourceFromArgs } from '../collateralArgs.ts';
import { printError } from '../output.ts';

export interface NodeStartOptions extends CollateralArgs {
  rpc?: string;
  registry?: string;
  market?: string;
  deployment?: string;
  devnet?: string;
  dataDir: string;
  host: string;
  port: string;
  endpoint?: string;
  stake: string;
  tee: string;
  simPlatform?: string;
  simGpus?: string;
  bundle?: string;
  keyFile?: string;
  register: boolean;
}

/** Start a node: enclave, API, and (unless --no-register) its on-chain registration. */
export async function startNodeCommand(o: NodeStartOptions): Promise<NodeDaemon> {
  const logger = createLogger({ component: 'node' });
  const stake = o.register ? etherArg(o.stake, '--stake') : 0n;
  const enclaveEnv: Record<string, string> = { FIRN_TEE: o.tee };
  if (o.tee === 'simulated') {
    if (!o.simPlatform) throw new InvalidInputError('--sim-platform FILE is required for the simulated TEE');
    // Read them here first: inside the enclave a bad file is only a vague startup failure.
    for (const [flag, f] of [
      ['--sim-platform', o.simPlatform],
      ['--sim-gpus', o.simGpus],
    ] as const) {
      if (f === undefined) continue;
      try {
        JSON.parse(readFileSync(f, 'utf8'));
      } catch (e) {
        const why =
          e instanceof SyntaxError ? 'is not JSON' : ((e as { code?: string }).code ?? 'cannot be read');
        throw new InvalidInputError(`${flag} ${f} ${why === 'ENOENT' ? 'does not exist' : why}`);
      }
    }
    enclaveEnv.FIRN_SIM_PLATFORM = resolve(o.simPlatform);
    if (o.simGpus) enclaveEnv.FIRN_SIM_GPUS = resolve(o.simGpus);
  }
  const bundlePath = o.bundle ? resolve(o.bundle) : defaultBundlePath();
  if (!existsSync(bundlePath)) await buildEnclaveBundle(bundlePath);
  const chain = o.register ? await resolveChain(o) : undefined;
  const operatorKey = chain
    ? readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_OPERATOR_KEY' })
    : undefined;
  const collateralSource = collateralSourceFromArgs(o);
  const node = new NodeDaemon({
    ...(collateralSource === undefined ? {} : { collateralSource }),
    dataDir: resolve(o.dataDir),
    host: o.host,
    port: Number(o.port),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    bundlePath,
    enclaveEnv,
    logger,
    ...(chain && operatorKey
      ? { chain: { rpcUrl: chain.rpcUrl, deployment: chain.deployment, operatorKey } }
      : {}),
  });
  await node.start();
  if (chain && operatorKey) {
    ensureRegistered(node, {
      rpcUrl: chain.rpcUrl,
      operatorKey,
      deployment: chain.deployment,
      stake,
      logger,
    }).catch((e: unknown) =>
      logger.error('registration failed', {
        code: (e as { code?: string }).code,
        message: (e as Error).message,
      }),
    );
  }
  return node;
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('run a firn compute node');
  node
    .command('start')
    .description('start the enclave, serve the node API, register on chain with stake')
    .option('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--registry <address>', 'registry contract')
    .option('--market <address>', 'job market contract')
    .option('--deployment <file>', 'deployment JSON (addresses, chainId, deployBlock)')
    .option('--devnet <file>', 'devnet state file')
    .option('--data-dir <dir>', 'where the node keeps its sealed keys and artifacts', '.firn/node')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0 = any free port)', '0')
    .option('--endpoint <url>', 'public URL to register (default http://host:port)')
    .option('--stake <eth>', 'stake to lock, in ether', '1')
    .option('--tee <type>', 'TEE backend: simulated | sgx-gramine | tdx', 'simulated')
    .option('--sim-platform <file>', 'simulated platform file (simulated TEE only)')
    .option('--sim-gpus <file>', 'simulated GPUs attached to the simulated machine (JSON list)')
    .option(
      '--pccs <url>',
      'Intel PCS or PCCS base URL: attach DCAP collateral to evidence (or env FIRN_PCCS_URL)',
    )
    .option('--collateral-cache <dir>', 'keep fetched collateral on disk until its nextUpdate')
    .option('--bundle <file>', 'enclave program bundle (default: the built one)')
    .option('--key-file <file>', 'operator private key file (or env FIRN_OPERATOR_KEY)')
    .option('--no-register', 'serve only; do not touch the chain')
    .action(async (o: NodeStartOptions) => {
      try {
        const n = await startNodeCommand(o);
        const stop = () => {
          void n.stop().finally(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (e) {
        printError(e, false);
        process.exit(1);
      }
    });
}
