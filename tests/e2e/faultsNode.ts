/**
 * A node host as its own OS process, for fault tests that kill it (SIGKILL) and start it again on
 * the same data dir: `node --import tsx tests/e2e/faultsNode.ts '<config JSON>'`. Prints
 * `READY <url>` on stdout once the API listens; logs are JSON lines on stdout.
 */
import type { FirnDeployment } from '@firn/chain';
import type { Hex } from '@firn/core';
import { createLogger, NodeDaemon, type NodeSchedulerOptions } from '@firn/node';

export interface FaultsNodeConfig {
  dataDir: string;
  bundlePath: string;
  enclaveEnv: Record<string, string>;
  port: number;
  rpcUrl: string;
  /** The deployment with deployBlock as a decimal string. */
  deployment: Omit<FirnDeployment, 'deployBlock'> & { deployBlock: string };
  operatorKey: Hex;
  scheduler?: NodeSchedulerOptions;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as FaultsNodeConfig;
const node = new NodeDaemon({
  dataDir: cfg.dataDir,
  bundlePath: cfg.bundlePath,
  enclaveEnv: cfg.enclaveEnv,
  port: cfg.port,
  logger: createLogger({ component: 'node' }, { level: 'debug' }),
  chain: {
    rpcUrl: cfg.rpcUrl,
    deployment: { ...cfg.deployment, deployBlock: BigInt(cfg.deployment.deployBlock) } as FirnDeployment,
    operatorKey: cfg.operatorKey,
  },
  ...(cfg.scheduler ? { scheduler: cfg.scheduler } : {}),
});
await node.start();
process.stdout.write(`READY ${node.url}\n`);
process.on('SIGTERM', () => {
  void node.stop().then(() => process.exit(0));
});
