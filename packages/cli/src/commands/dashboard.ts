import { InvalidInputError } from '@firn/core';
import { resolveDashboardDeployment, serveDashboard } from '@firn/dashboard';
import type { Command } from 'commander';
import type { Address } from 'viem';
import { resolveChain } from '../chainArgs.ts';
import { exitCodeOf, printError } from '../output.ts';

export interface DashboardCommandOptions {
  rpc?: string;
  market?: string;
  registry?: string;
  devnet?: string;
  deployment?: string;
  port: string;
  host: string;
  fromBlock?: string;
  allowPrivateEndpoints?: boolean;
}

/**
 * `firn dashboard`: serve the web dashboard against any chain. The addresses come from a devnet
 * state or deployment file, or from --rpc with --market (the registry, verifier set and reward pool
 * are read from the market). Stays up until Ctrl-C.
 */
export async function runDashboard(o: DashboardCommandOptions): Promise<void> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidInputError('--port must be 0..65535');
  if (o.fromBlock !== undefined && !/^\d{1,20}$/.test(String(o.fromBlock)))
    throw new InvalidInputError(
      `--from-block must be a block number (decimal digits), got ${JSON.stringify(o.fromBlock)}`,
    );
  const fromBlock = o.fromBlock === undefined ? undefined : BigInt(o.fromBlock);
  let rpcUrl: string;
  let deployment: Awaited<ReturnType<typeof resolveDashboardDeployment>>;
  if (o.devnet || o.deployment) {
    const chain = await resolveChain(o);
    rpcUrl = chain.rpcUrl;
    deployment = { ...chain.deployment, ...(fromBlock === undefined ? {} : { deployBlock: fromBlock }) };
  } else {
    if (!o.rpc || !o.market) throw new InvalidInputError('pass --rpc URL --market ADDR (or --devnet FILE)');
    rpcUrl = o.rpc;
    deployment = await resolveDashboardDeployment({
      rpcUrl: o.rpc,
      market: o.market as Address,
      ...(o.registry ? { registry: o.registry as Address } : {}),
      ...(fromBlock === undefined ? {} : { fromBlock }),
    });
  }
  const server = await serveDashboard({
    rpcUrl,
    deployment,
    host: o.host,
    port,
    // A devnet's nodes listen on 127.0.0.1; anywhere else the relay reaches public endpoints only.
    allowPrivateEndpoints: o.allowPrivateEndpoints === true || o.devnet !== undefined,
  });
  process.stdout.write(
    `dashboard on ${server.url} (chain ${deployment.chainId}, market ${deployment.jobMarket}, events from block ${deployment.deployBlock}; built in ${server.buildMs} ms)\n`,
  );
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description(
      'serve the web dashboard (nodes, verifiers, jobs, a requester’s decrypted progress) against a chain',
    )
    .option('--rpc <url>', 'JSON-RPC URL of the chain (read through a read-only proxy)')
    .option('--market <address>', 'job market contract (the other contracts are read from it)')
    .option('--registry <address>', 'registry contract (checked against the market’s)')
    .option('--devnet <file>', 'devnet state file (instead of --rpc/--market)')
    .option('--deployment <file>', 'deployment file (instead of --market)')
    .option('--from-block <n>', 'first block of the event scans (default: the market’s deployment block)')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', '8787')
    .option(
      '--allow-private-endpoints',
      'relay to nodes whose endpoints are loopback or private addresses (on with --devnet)',
    )
    .action(async (o: DashboardCommandOptions) => {
      try {
        await runDashboard(o);
      } catch (e) {
        printError(e, false);
        process.exit(exitCodeOf(e));
      }
    });
}
