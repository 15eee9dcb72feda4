import { statSync } from 'node:fs';
import { type FirnDeployment, firnJobMarketAbi, firnRegistryAbi } from '@firn/chain';
import { FirnError, type Hex, InvalidInputError } from '@firn/core';
import { type Address, createPublicClient, http, isAddress, parseEther, zeroAddress } from 'viem';
import { readUserFileSync } from './readUserFile.ts';
import { redactRpcUrl } from './rpcUrl.ts';

export interface ChainArgs {
  rpc?: string;
  registry?: string;
  market?: string;
  deployment?: string;
  devnet?: string;
}

export interface ResolvedChain {
  rpcUrl: string;
  deployment: FirnDeployment;
  /** The devnet state file's contents when --devnet was given. */
  devnet?: Record<string, unknown>;
}

function addr(v: unknown, what: string): Address {
  if (typeof v !== 'string' || !isAddress(v)) throw new InvalidInputError(`${what} is not an address`);
  return v;
}

/** An RPC URL from the command line or a state file: http(s) or ws(s), else E_INVALID_INPUT naming the flag. */
function rpcArg(v: string, name = '--rpc'): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidInputError(`${name} ${redactRpcUrl(v)} is not a URL (e.g. http://127.0.0.1:8545)`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol))
    throw new InvalidInputError(`${name} ${redactRpcUrl(v)} is not an http(s) or ws(s) URL`);
  return v;
}

/** Serialise a deployment for a file (bigints as decimal strings). */
export function deploymentToJson(d: FirnDeployment): Record<string, unknown> {
  return { ...d, deployBlock: d.deployBlock.toString() };
}

export function deploymentFromJson(o: Record<string, unknown>): FirnDeployment {
  const c = (o.contracts ?? o) as Record<string, unknown>;
  return {
    chainId: Number(o.chainId),
    registry: addr(c.registry, 'registry'),
    verifierSet: addr(c.verifierSet ?? zeroAddress, 'verifierSet'),
    jobMarket: addr(c.jobMarket ?? zeroAddress, 'jobMarket'),
    dataLedger: addr(c.dataLedger ?? zeroAddress, 'dataLedger'),
    ...(c.rewards === undefined ? {} : { rewards: addr(c.rewards, 'rewards') }),
    ...(c.timelock === undefined ? {} : { timelock: addr(c.timelock, 'timelock') }),
    deployBlock: BigInt(String(o.deployBlock ?? 0)),
  };
}

/** Largest devnet state or deployment file read, bytes (one is a few KiB). */
const MAX_CHAIN_FILE_BYTES = 1 << 20;

/**
 * Resolve where the network is: a devnet state file, a deployment file, or an RPC URL with the
 * registry or market address (the other addresses are read from the contracts).
 */
export async function resolveChain(given: ChainArgs): Promise<ResolvedChain> {
  // FIRN_RPC_URL stands for --rpc when none is given (an RPC URL with a key stays out of argv and
  // shell history; decision 1686).
  const env = process.env['FIRN_RPC_URL'];
  const a: ChainArgs = given.rpc === undefined && env ? { ...given, rpc: env } : given;
  const fromFile = a.devnet ?? a.deployment;
  if (fromFile) {
    let o: Record<string, unknown>;
    const flag = a.devnet ? '--devnet' : '--deployment';
    let text: string;
    try {
      text = readUserFileSync(fromFile, flag, MAX_CHAIN_FILE_BYTES).toString('utf8');
    } catch (e) {
      if (e instanceof FirnError && e.code === 'E_NOT_FOUND')
        throw new FirnError(
          'E_NOT_FOUND',
          `${flag} ${fromFile} does not exist${a.devnet ? ' (a running `firn devnet` writes it: is one running in this folder?)' : ''}`,
          { cause: e },
        );
      throw e;
    }
    try {
      o = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new FirnError('E_INVALID_INPUT', `${flag} ${fromFile} is not JSON`, { cause: e });
    }
    // What is wrong with the file's content names the flag and the file (a wrong file was passed).
    const notFile = (why: string) =>
      new InvalidInputError(
        `${flag} ${fromFile} is not a ${a.devnet ? 'devnet state' : 'deployment'} file: ${why}`,
      );
    const inFile = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw e instanceof FirnError ? notFile(e.message) : e;
      }
    };
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw notFile('not a JSON object');
    if (a.rpc === undefined && typeof o.rpcUrl !== 'string')
      throw notFile('it names no rpcUrl (or pass --rpc)');
    const rpcUrl = a.rpc !== undefined ? rpcArg(a.rpc) : inFile(() => rpcArg(o.rpcUrl as string, 'rpcUrl'));
    const deployment = inFile(() => deploymentFromJson(o));
    // A deployment file (firn deploy) names its chain: an RPC of another chain would point every
    // address at unrelated (or attacker-deployed) contracts. A devnet file is checked too when
    // --rpc replaces the RPC it names.
    if (!a.devnet || a.rpc !== undefined) {
      const answered = await createPublicClient({ transport: http(rpcUrl) }).getChainId();
      if (answered !== deployment.chainId)
        throw new InvalidInputError(
          `${fromFile} is for chain id ${deployment.chainId} but the RPC answers chain id ${answered}: pass the matching --rpc`,
        );
    }
    return { rpcUrl, deployment, ...(a.devnet ? { devnet: o } : {}) };
  }
  if (!a.rpc)
    throw new InvalidInputError(
      'pass --rpc URL (or set FIRN_RPC_URL) with --registry or --market, or --devnet STATE.json or --deployment FILE',
    );
  // Every flag is checked before the RPC is asked anything: a mistake in the command is exit 3
  // whether or not the RPC answers.
  rpcArg(a.rpc);
  let registry = a.registry ? addr(a.registry, '--registry') : undefined;
  const market = a.market ? addr(a.market, '--market') : undefined;
  const pub = createPublicClient({ transport: http(a.rpc) });
  const chainId = await pub.getChainId();
  if (!registry && market)
    registry = await pub.readContract({ address: market, abi: firnJobMarketAbi, functionName: 'registry' });
  if (!registry) throw new InvalidInputError('pass --registry or --market');
  const read = (functionName: 'verifierSet' | 'rewardPool' | 'owner') =>
    pub.readContract({ address: registry, abi: firnRegistryAbi, functionName });
  const [verifierSet, rewards, timelock] = await Promise.all([
    read('verifierSet'),
    read('rewardPool'),
    read('owner'),
  ]);
  return {
    rpcUrl: a.rpc,
    deployment: {
      chainId,
      registry,
      verifierSet,
      jobMarket: market ?? zeroAddress,
      dataLedger: zeroAddress,
      ...(rewards === zeroAddress ? {} : { rewards }),
      // The registry's owner: the timelock (FirnGovernance) in every deployment made by deployFirn.
      timelock,
      deployBlock: 0n,
    },
  };
}

/** Largest private key file read, bytes. */
const MAX_KEY_FILE_BYTES = 4096;

/**
 * A private key from a file or an environment variable; never from argv (visible in ps). The file
 * goes through readUserFileSync: a folder, a missing file or one over 4 KiB is E_INVALID_INPUT,
 * E_NOT_FOUND or E_TOO_LARGE naming --key-file and the path (exit 3); a key that is not 32 bytes of
 * hex is E_INVALID_INPUT.
 */
export function readKey(opts: { keyFile?: string; env: string }): Hex {
  // A key file is 64 hex digits and a newline: anything over 4 KiB is not one.
  const raw = opts.keyFile
    ? readUserFileSync(opts.keyFile, '--key-file', MAX_KEY_FILE_BYTES).toString('utf8').trim()
    : process.env[opts.env];
  if (!raw) throw new InvalidInputError(`no key: pass --key-file or set ${opts.env}`);
  const k = raw.startsWith('0x') ? raw : `0x${raw}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(k))
    throw new InvalidInputError(
      `${opts.keyFile ? `--key-file ${opts.keyFile}` : opts.env} must hold a private key: 32 bytes of hex (0x followed by 64 hex digits)`,
    );
  return k as Hex;
}

/**
 * A warning when a private key file can be read by other accounts on this machine (its POSIX mode
 * grants any permission to group or others, e.g. 0644), else undefined. The key is still read:
 * whoever can read the file can sign as its owner, so the user is told how to close it
 * (`chmod 600`). Undefined on Windows (no POSIX modes) and when the file cannot be stat'ed (the
 * read that follows reports that).
 */
export function keyFileExposure(keyFile: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(keyFile).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  const who = [mode & 0o070 ? 'its group' : '', mode & 0o007 ? 'every account' : ''].filter(Boolean);
  return `--key-file ${keyFile} is open to ${who.join(' and ')} on this machine (mode ${mode.toString(8).padStart(4, '0')}): anyone who can read it can sign as this key; run chmod 600 ${keyFile}`;
}

/** An amount of ether from the command line (`--escrow`, `--stake`); E_INVALID_INPUT naming the flag. */
export function etherArg(v: string, flag: string): bigint {
  if (!/^\d+(\.\d{1,18})?$/.test(v.trim()))
    throw new InvalidInputError(`${flag} must be an amount of ether such as 0.01 (got ${JSON.stringify(v)})`);
  return parseEther(v.trim());
}

/**
 * The requester's key for a resolved chain: `--key-file`, else FIRN_REQUESTER_KEY, else (with
 * --devnet) the devnet's requester account. E_INVALID_INPUT when none is given.
 */
export function requesterKeyFor(chain: ResolvedChain, keyFile?: string): Hex {
  const devnetKey = (chain.devnet as { accounts?: { requester?: { privateKey?: unknown } } } | undefined)
    ?.accounts?.requester?.privateKey;
  if (
    keyFile === undefined &&
    process.env['FIRN_REQUESTER_KEY'] === undefined &&
    typeof devnetKey === 'string'
  )
    return devnetKey as Hex;
  return readKey({ ...(keyFile ? { keyFile } : {}), env: 'FIRN_REQUESTER_KEY' });
}

/**
 * What `runJob` takes to pick a node for a first-party job (inference, training) when the user
 * named none: with --devnet, only nodes running the devnet's first-party image
 * (`{ firstPartyMeasurements: [measurement] }`; an app node would refuse the job at preflight).
 * Empty (`{}`) when `--node` is given or the chain is not a devnet that names its measurement.
 */
export function firstPartyNodeChoice(
  chain: ResolvedChain,
  node: string | undefined,
): { firstPartyMeasurements?: Hex[] } {
  const measurement = (chain.devnet as { measurement?: unknown } | undefined)?.measurement;
  if (node !== undefined || typeof measurement !== 'string' || measurement === '') return {};
  return { firstPartyMeasurements: [measurement as Hex] };
}
