import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  buildEnclaveBundle,
  createLogger,
  defaultBundlePath,
  ensureRegistered,
  LivenessService,
  NodeDaemon,
} from '@firn/node';
import { createFirnClients, NodeStatus, withdrawAllCredits } from '@firn/chain';
import { InvalidInputError } from '@firn/core';
import type { Command } from 'commander';
import { parseEther } from 'viem';
import { readKey, resolveChain } from '../chainArgs.ts';
import { printError } from '../output.ts';

export interface NodeStartOptions {
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
  const enclaveEnv: Record<string, string> = { FIRN_TEE: o.tee };
  if (o.tee === 'simulated') {
    if (!o.simPlatform) throw new InvalidInputError('--sim-platform FILE is required for the simulated TEE');
    enclaveEnv.FIRN_SIM_PLATFORM = resolve(o.simPlatform);
    if (o.simGpus) enclaveEnv.FIRN_SIM_GPUS = resolve(o.simGpus);
  }
  const bundlePath = o.bundle ? resolve(o.bundle) : defaultBundlePath();
  if (!existsSync(bundlePath)) await buildEnclaveBundle(bundlePath);
  const chain = o.register ? await resolveChain(o) : undefined;
  const operatorKey = chain
    ? readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_OPERATOR_KEY' })
    : undefined;
  const node = new NodeDaemon({
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
      stake: parseEther(o.stake),
      logger,
    })
      .then((status) => {
        // Active: prove liveness through the enclave and collect epoch rewards and payouts.
        if (status === NodeStatus.Active && chain.deployment.rewards !== undefined)
          new LivenessService(node, {
            rpcUrl: chain.rpcUrl,
            operatorKey,
            deployment: chain.deployment,
            logger,
            pollIntervalMs: 500,
          }).start();
        // Refused: the stake was credited back (pull payment); take it.
        if (status === NodeStatus.Rejected)
          return withdrawAllCredits(
            createFirnClients(chain.rpcUrl, operatorKey, chain.deployment, { pollingIntervalMs: 500 }),
          ).then((got) =>
            logger.warn('registration refused; stake refund withdrawn', { wei: got.registry.toString() }),
          );
      })
      .catch((e: unknown) =>
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
