import { statSync } from 'node:fs';
import { type FirnDeployment, firnJobMarketAbi, firnRegistryAbi, firnTransport } from '@firn/chain';
import { FirnError, type Hex, InvalidInputError } from '@firn/core';
import { type Address, createPublicClient, isAddress, parseEther, zeroAddress } from 'viem';
import { readUserFileSync } from './readUserFile.ts';
import { rpcFailureBody } from './output.ts';
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
  /**
   * Where rpcUrl came from, as messages name it (decision 1749): `--rpc`, `FIRN_RPC_URL`, or
   * `the rpcUrl of --devnet FILE` / `the rpcUrl of --deployment FILE` (resolveChain always sets it;
   * a chain built by hand may leave it out).
   */
  rpcSource?: string;
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
 * The first RPC call of a command: an RPC failure (timeout, rate limit, unreachable, refused) is
 * rethrown naming where the URL came from (decision 1749), other errors as they are.
 */
async function firstCall<T>(source: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const b = rpcFailureBody(e, source);
    if (b !== undefined) throw new FirnError(b.code, b.message, { cause: e });
    throw e;
  }
}

/**
 * Resolve where the network is: a devnet state file, a deployment file, or an RPC URL with the
 * registry or market address (the other addresses are read from the contracts).
 *
 * The RPC (decision 1749): `--rpc` first; else the file's `rpcUrl`; else `FIRN_RPC_URL`. The
 * environment only fills a missing value: when a file names its RPC and FIRN_RPC_URL names another,
 * the command is refused (E_INVALID_INPUT naming both) rather than one silently replacing the other.
 * An RPC that answers another chain id than a deployment file (or a devnet file whose RPC was
 * replaced) names is E_INVALID_INPUT naming where that RPC came from.
 */
export async function resolveChain(given: ChainArgs): Promise<ResolvedChain> {
  const env = process.env['FIRN_RPC_URL'] || undefined;
  const a = given;
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
    const fileRpc = typeof o.rpcUrl === 'string' ? o.rpcUrl : undefined;
    const fileSource = `the rpcUrl of ${flag} ${fromFile}`;
    let rpcUrl: string;
    let rpcSource: string;
    if (a.rpc !== undefined) {
      rpcUrl = rpcArg(a.rpc);
      rpcSource = '--rpc';
    } else if (fileRpc !== undefined) {
      if (env !== undefined && env !== fileRpc)
        throw new InvalidInputError(
          `FIRN_RPC_URL (${redactRpcUrl(env)}) names another RPC than ${fileSource} (${redactRpcUrl(fileRpc)}): the environment never replaces a file's RPC; unset FIRN_RPC_URL to use the file's, or pass --rpc to choose one`,
        );
      rpcUrl = inFile(() => rpcArg(fileRpc, 'rpcUrl'));
      rpcSource = fileSource;
    } else if (env !== undefined) {
      rpcUrl = rpcArg(env, 'FIRN_RPC_URL');
      rpcSource = 'FIRN_RPC_URL';
    } else throw notFile('it names no rpcUrl (pass --rpc or set FIRN_RPC_URL)');
    const deployment = inFile(() => deploymentFromJson(o));
    // A deployment file (firn deploy) names its chain: an RPC of another chain would point every
    // address at unrelated (or attacker-deployed) contracts. A devnet file is checked too when
    // another RPC replaces the one it names.
    if (!a.devnet || rpcSource !== fileSource) {
      const answered = await firstCall(rpcSource, () =>
        createPublicClient({ transport: firnTransport(rpcUrl) }).getChainId(),
      );
      if (answered !== deployment.chainId)
        throw new InvalidInputError(
          `${fromFile} is for chain id ${deployment.chainId} but the RPC answers chain id ${answered} (that RPC is ${redactRpcUrl(rpcUrl)}, from ${rpcSource}): ${
            rpcSource === '--rpc'
              ? 'pass the matching --rpc'
              : rpcSource === 'FIRN_RPC_URL'
                ? 'set FIRN_RPC_URL to an RPC of that chain, or pass --rpc'
                : 'the file names an RPC of another chain: pass --rpc'
          }`,
        );
    }
    return { rpcUrl, rpcSource, deployment, ...(a.devnet ? { devnet: o } : {}) };
  }
  const rpcSource = a.rpc !== undefined ? '--rpc' : 'FIRN_RPC_URL';
  const rpc = a.rpc ?? env;
  if (!rpc)
    throw new InvalidInputError(
      'pass --rpc URL (or set FIRN_RPC_URL) with --registry or --market, or --devnet STATE.json or --deployment FILE',
    );
  // Every flag is checked before the RPC is asked anything: a mistake in the command is exit 3
  // whether or not the RPC answers.
  rpcArg(rpc, rpcSource);
  let registry = a.registry ? addr(a.registry, '--registry') : undefined;
  const market = a.market ? addr(a.market, '--market') : undefined;
  const pub = createPublicClient({ transport: firnTransport(rpc) });
  const chainId = await firstCall(rpcSource, () => pub.getChainId());
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
    rpcUrl: rpc,
    rpcSource,
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
