import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  type DeployFirnParams,
  deployFirn,
  type FirnDeployment,
  firnTransport,
  MIN_PRODUCTION_GOVERNANCE_DELAY,
} from '@firn/chain';
import { type Hex, InvalidInputError, TEE_TYPES, type TeeTypeName } from '@firn/core';
import type { Command } from 'commander';
import { type Address, createPublicClient, getAddress, isAddress } from 'viem';
import { deploymentToJson, etherArg, keyFileExposure, readKey } from '../chainArgs.ts';
import { printError, printJson } from '../output.ts';

/** `firn deploy` options (strings as commander gives them). */
export interface DeployOptions {
  rpc: string;
  keyFile?: string;
  /** The chain id the RPC must answer; checked before any transaction. */
  chainId?: string;
  out: string;
  force?: boolean;
  /** Write the RPC URL into the deployment file (off: RPC URLs often carry an API key). */
  recordRpc?: boolean;
  profile: string;
  governanceDelay?: string;
  minNodeStake: string;
  minVerifierStake: string;
  unbondingPeriod: string;
  challengeWindow: string;
  slash: string;
  claimBond: string;
  registrationFee: string;
  epochLength: string;
  measurement: string[];
  verifier: string[];
  proposer: string[];
  executor: string[];
  guardian?: string;
  json?: boolean;
}

export interface DeployResult {
  deployment: FirnDeployment;
  /** Absolute path of the deployment file written. */
  file: string;
}

function seconds(v: string, flag: string): number {
  if (!/^\d+$/.test(v.trim()))
    throw new InvalidInputError(`${flag} must be a whole number of seconds (got ${v})`);
  return Number(v);
}

function address(v: string, flag: string): Address {
  if (!isAddress(v)) throw new InvalidInputError(`${flag} ${v} is not an address`);
  return getAddress(v);
}

/** `--measurement TEE:0xDIGEST` (TEE: sgx | tdx | simulated | nitro ... or its number). */
export function measurementFlag(v: string): { teeType: number; measurement: Hex } {
  const m = /^([a-z0-9-]+):(0x[0-9a-fA-F]{64})$/.exec(v.trim());
  if (!m) throw new InvalidInputError(`--measurement must be TEE:0x<32-byte hex> (got ${JSON.stringify(v)})`);
  const name = m[1] as string;
  const teeType = name in TEE_TYPES ? TEE_TYPES[name as TeeTypeName] : Number(name);
  if (!Object.values(TEE_TYPES).includes(teeType as never))
    throw new InvalidInputError(
      `--measurement: unknown TEE type ${name} (one of ${Object.keys(TEE_TYPES).join(', ')})`,
    );
  return { teeType, measurement: (m[2] as string).toLowerCase() as Hex };
}

/**
 * Deploy the firn contracts to any EVM chain with `deployFirn` (packages/chain/src/deploy.ts) and
 * write the deployment file that `--deployment FILE` takes: `{ chainId, registry, verifierSet,
 * jobMarket, dataLedger, rewards, timelock, deployBlock }` (+ `rpcUrl` with --record-rpc).
 *
 * Checked before any transaction: the RPC answers `--chain-id` when given; `--out` does not
 * exist (unless --force); every flag parses. Errors: E_INVALID_INPUT naming the flag,
 * E_CHAIN_REVERTED from a deployment transaction. A `--key-file` that other accounts can read is
 * reported through `io.warn` (default: a `warning: …` line on stderr) before it is used.
 */
export async function runDeploy(
  o: DeployOptions,
  io: { warn?: (message: string) => void } = {},
): Promise<DeployResult> {
  if (o.profile !== 'production' && o.profile !== 'devnet')
    throw new InvalidInputError('--profile must be production or devnet');
  const file = resolve(o.out);
  // A folder is named as a folder, with or without --force (decision 1747).
  if (existsSync(file) && statSync(file).isDirectory())
    throw new InvalidInputError(`--out ${file} is a directory: name a file (e.g. in it)`);
  if (existsSync(file) && !o.force)
    throw new InvalidInputError(`${file} exists: choose another --out, or --force to replace it`);
  // The file is the only record of the addresses: a folder it cannot be written to is refused now.
  try {
    if (!statSync(dirname(file)).isDirectory()) throw new Error('not a folder');
    if (existsSync(file) && !statSync(file).isFile()) throw new Error('not a file');
    accessSync(dirname(file), constants.W_OK);
  } catch {
    throw new InvalidInputError(`--out ${file}: not a file in a folder that exists and can be written`);
  }
  const exposed = o.keyFile ? keyFileExposure(o.keyFile) : undefined;
  if (exposed !== undefined) (io.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`)))(exposed);
  const deployerKey = readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_DEPLOYER_KEY' });
  const production = o.profile === 'production';
  const params: DeployFirnParams = {
    rpcUrl: o.rpc,
    deployerKey,
    profile: o.profile,
    governanceDelay:
      o.governanceDelay === undefined
        ? production
          ? MIN_PRODUCTION_GOVERNANCE_DELAY
          : 60
        : seconds(o.governanceDelay, '--governance-delay'),
    minNodeStake: etherArg(o.minNodeStake, '--min-node-stake'),
    minVerifierStake: etherArg(o.minVerifierStake, '--min-verifier-stake'),
    unbondingPeriod: seconds(o.unbondingPeriod, '--unbonding-period'),
    challengeWindow: seconds(o.challengeWindow, '--challenge-window'),
    slashAmount: etherArg(o.slash, '--slash'),
    claimBond: etherArg(o.claimBond, '--claim-bond'),
    registrationFee: etherArg(o.registrationFee, '--registration-fee'),
    epochLength: seconds(o.epochLength, '--epoch-length'),
    measurements: o.measurement.map(measurementFlag),
    verifiers: o.verifier.map((v) => address(v, '--verifier')),
    ...(o.proposer.length ? { proposers: o.proposer.map((v) => address(v, '--proposer')) } : {}),
    ...(o.executor.length ? { executors: o.executor.map((v) => address(v, '--executor')) } : {}),
    ...(o.guardian ? { guardian: address(o.guardian, '--guardian') } : {}),
  };
  if (o.chainId !== undefined) {
    if (!/^\d+$/.test(o.chainId)) throw new InvalidInputError('--chain-id must be a number');
    const got = await createPublicClient({ transport: firnTransport(o.rpc) }).getChainId();
    if (got !== Number(o.chainId))
      throw new InvalidInputError(
        `--rpc answers chain id ${got}, not --chain-id ${o.chainId}: nothing was sent`,
      );
  }
  const deployment = await deployFirn(params);
  const text = `${JSON.stringify({ ...(o.recordRpc ? { rpcUrl: o.rpc } : {}), ...deploymentToJson(deployment) }, null, 2)}\n`;
  try {
    writeFileSync(file, text);
  } catch (e) {
    // Deployed but not written: the addresses must not be lost with the error.
    throw new InvalidInputError(
      `deployed, but --out ${file} could not be written (${(e as Error).message}); the deployment is:\n${text}`,
    );
  }
  return { deployment, file };
}

export function registerDeploy(program: Command): void {
  const many = (v: string, acc: string[]) => [...acc, v];
  program
    .command('deploy')
    .description('deploy the firn contracts to an EVM chain and write the deployment file')
    .requiredOption('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--key-file <file>', 'deployer private key file (else env FIRN_DEPLOYER_KEY)')
    .option('--chain-id <n>', 'refuse unless the RPC answers this chain id')
    .option('--out <file>', 'deployment file to write', 'deployment.json')
    .option('--force', 'replace --out if it exists')
    .option('--record-rpc', 'write the RPC URL into the deployment file (it may hold an API key)')
    .option(
      '--profile <p>',
      'production (SGX/TDX only, delay >= 1 day) | devnet (simulated TEE allowed)',
      'production',
    )
    .option('--governance-delay <s>', 'timelock delay, seconds (default 86400; devnet 60)')
    .option('--min-node-stake <eth>', 'smallest node stake', '1')
    .option('--min-verifier-stake <eth>', 'smallest verifier stake', '1')
    .option('--unbonding-period <s>', 'seconds before an exiting stake is paid out', '604800')
    .option('--challenge-window <s>', 'seconds verifiers have to dispute a proof', '3600')
    .option('--slash <eth>', 'taken from a node when a finding is upheld', '0.5')
    .option('--claim-bond <eth>', 'posted with every claim', '0.01')
    .option('--registration-fee <eth>', 'paid into the reward pool per registration', '0')
    .option('--epoch-length <s>', 'seconds per reward epoch', '3600')
    .option(
      '--measurement <tee:hex>',
      'allow-list at bootstrap, e.g. tdx:0x… (repeatable)',
      many,
      [] as string[],
    )
    .option(
      '--verifier <address>',
      'admit to the verifier set at bootstrap (repeatable)',
      many,
      [] as string[],
    )
    .option(
      '--proposer <address>',
      'may schedule governance operations (repeatable; default the deployer)',
      many,
      [] as string[],
    )
    .option(
      '--executor <address>',
      'may execute ready operations (repeatable; default the deployer)',
      many,
      [] as string[],
    )
    .option('--guardian <address>', 'may pause and revoke at once')
    .option('--json', 'print JSON')
    .action(async (o: DeployOptions) => {
      try {
        const { deployment, file } = await runDeploy(o);
        if (o.json) printJson({ file, ...deploymentToJson(deployment) });
        else
          process.stdout.write(
            `deployed on chain ${deployment.chainId}: registry ${deployment.registry}, job market ${deployment.jobMarket}, timelock ${deployment.timelock}\nwrote ${file} (pass --deployment ${file} --rpc URL to the other commands)\n`,
          );
      } catch (e) {
        printError(e, Boolean(o.json));
        process.exitCode = 1;
      }
    });
}
