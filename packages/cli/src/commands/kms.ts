import { resolve } from 'node:path';
import { parseSimulatedPlatform } from '@firn/attestation';
import { firnRegistryAbi, firnTransport } from '@firn/chain';
import { FirnError, type Hex, hexBytes, InvalidInputError, type TeeTypeName, teeTypeCode } from '@firn/core';
import { KmsDaemon } from '@firn/kms';
import { createLogger } from '@firn/node';
import type { Command } from 'commander';
import { createPublicClient } from 'viem';
import { resolveChain } from '../chainArgs.ts';
import { exitCodeOf, printError } from '../output.ts';
import { loadPolicy, loadSimRoots } from '../policyArgs.ts';
import { readUserFileSync } from '../readUserFile.ts';

/** Largest --collateral or --sim-platform file read, bytes (collateral is tens of KiB). */
const MAX_KMS_FILE_BYTES = 4 * 1024 * 1024;

export interface KmsStartOptions {
  dataDir: string;
  host: string;
  port: string;
  simPlatform?: string;
  simRoot?: string;
  policy?: string;
  allowMeasurement: string[];
  collateral?: string;
  rpc?: string;
  registry?: string;
  deployment?: string;
  devnet?: string;
}

/**
 * Start the key broker (`firn kms start`): its master secret sealed by its own simulated TEE
 * (--sim-platform), key requests appraised with --policy and the --allow-measurement list, and,
 * with a chain (--deployment/--rpc --registry), the registry's on-chain allow-list as well.
 */
export async function startKmsCommand(o: KmsStartOptions): Promise<KmsDaemon> {
  if (!o.simPlatform)
    throw new InvalidInputError(
      '--sim-platform FILE is required: the broker seals its master secret with it',
    );
  const allow = o.allowMeasurement.map((m) => hexBytes(m, '--allow-measurement', 32));
  if (allow.length === 0)
    throw new InvalidInputError(
      'pass at least one --allow-measurement HEX: the broker never releases to any code',
    );
  const base = loadPolicy(o.policy, 'production');
  const policy = { ...base, measurementAllowList: o.allowMeasurement.map((m) => m.toLowerCase()) };
  let isMeasurementAllowed: ((t: TeeTypeName, m: Hex) => Promise<boolean>) | undefined;
  if (o.rpc || o.deployment || o.devnet) {
    const chain = await resolveChain(o);
    const pub = createPublicClient({ transport: firnTransport(chain.rpcUrl) });
    isMeasurementAllowed = (teeType, measurement) =>
      pub.readContract({
        address: chain.deployment.registry,
        abi: firnRegistryAbi,
        functionName: 'isMeasurementAllowed',
        args: [teeTypeCode(teeType), measurement],
      }) as Promise<boolean>;
  }
  let collateral: unknown;
  if (o.collateral) {
    const text = readUserFileSync(o.collateral, '--collateral', MAX_KMS_FILE_BYTES).toString('utf8');
    try {
      collateral = JSON.parse(text);
    } catch (e) {
      throw new FirnError('E_INVALID_INPUT', `--collateral ${o.collateral} is not JSON`, { cause: e });
    }
  }
  const readTyped = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof FirnError) throw e;
      throw new FirnError('E_INVALID_INPUT', `cannot read ${what}`, { cause: e });
    }
  };
  const simPlatform = o.simPlatform;
  const platformText = readUserFileSync(simPlatform, '--sim-platform', MAX_KMS_FILE_BYTES).toString('utf8');
  const platform = readTyped(`--sim-platform ${simPlatform}`, () =>
    parseSimulatedPlatform(JSON.parse(platformText)),
  );
  const roots = readTyped(`--sim-root ${o.simRoot}`, () => loadSimRoots(o.simRoot));
  const daemon = new KmsDaemon({
    dataDir: resolve(o.dataDir),
    host: o.host,
    port: Number(o.port),
    platform,
    policy,
    roots,
    ...(collateral === undefined ? {} : { collateral }),
    ...(isMeasurementAllowed ? { isMeasurementAllowed } : {}),
    logger: createLogger({ component: 'kms' }),
  });
  await daemon.start();
  return daemon;
}

export function registerKms(program: Command): void {
  const kms = program.command('kms').description('run the key broker that releases TD sealing keys');
  kms
    .command('start')
    .description('serve sealing keys to attested, allow-listed TEEs (writes DATA_DIR/kms.json: url, address)')
    .option('--data-dir <dir>', 'where the sealed master secret and kms.json live', '.firn/kms')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0 = any free port)', '0')
    .option('--sim-platform <file>', "the broker's own simulated TEE platform (seals its master secret)")
    .option('--sim-root <file>', 'pin a simulated TEE root (PEM) for requests; only a dev policy accepts it')
    .option('--policy <policy>', 'dev | production | FILE', 'production')
    .option(
      '--allow-measurement <hex>',
      'measurement digest allowed to receive its key (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--collateral <file>',
      'own DCAP collateral (QuoteCollateralV3 JSON); attached pieces replace a piece only where newer',
    )
    .option('--rpc <url>', 'also require the registry allow-list on this chain')
    .option('--registry <address>', 'registry contract')
    .option('--deployment <file>', 'deployment JSON')
    .option('--devnet <file>', 'devnet state file')
    .action(async (o: KmsStartOptions) => {
      try {
        const d = await startKmsCommand(o);
        const stop = () => {
          void d.stop().finally(() => process.exit(0));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (e) {
        printError(e, false);
        process.exit(exitCodeOf(e));
      }
    });
}
