import { type ChildProcess, spawn } from 'node:child_process';
import { pbkdf2Sync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FirnError } from '@firn/core';
import { bytesToHex, type Hex } from 'viem';
import { HDKey, hdKeyToAccount } from 'viem/accounts';

/**
 * The devnet mnemonic (the well-known Foundry/Hardhat test mnemonic). Its keys are public: never
 * use them on a real network.
 */
export const DEVNET_MNEMONIC = 'test test test test test test test test test test test junk';
export const DEVNET_CHAIN_ID = 31337;

export interface AnvilAccount {
  address: Hex;
  privateKey: Hex;
}

export interface AnvilInstance {
  rpcUrl: string;
  port: number;
  chainId: number;
  accounts: AnvilAccount[];
  stop(): Promise<void>;
  pid: number;
}

export interface StartAnvilOptions {
  /** TCP port on 127.0.0.1; when absent anvil binds a free one itself (port 0) and reports it. */
  port?: number;
  /** Seconds per block; absent means a block per transaction (automine). */
  blockTime?: number;
  /** Number of funded accounts (default 10). */
  accounts?: number;
  /** Balance of each account in ether (default 10000). */
  balanceEth?: number;
  /** Milliseconds to wait for the RPC to answer (default 15000). */
  startTimeoutMs?: number;
  /** EIP-155 chain id (default DEVNET_CHAIN_ID), e.g. to test against another chain. */
  chainId?: number;
  /** anvil's `--hardfork` (default: anvil's latest), e.g. 'berlin' for a chain without base fees. */
  hardfork?: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // An orphaned anvil would hold its port and CPU after a crashed test run.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** Path of the anvil binary installed from npm, resolved from this package, not from cwd. */
export function anvilBinaryPath(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const require = createRequire(import.meta.url);
  try {
    const p = join(
      dirname(require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`)),
      'bin',
      'anvil',
    );
    if (existsSync(p)) return p;
  } catch {
    // fall through to the .bin wrapper
  }
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const p = join(dir, 'node_modules', '.bin', 'anvil');
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir)
      throw new FirnError('E_UNAVAILABLE', 'anvil binary not found (is @foundry-rs/anvil installed?)');
    dir = up;
  }
}

/** Ask the OS for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** The first `count` accounts anvil derives from DEVNET_MNEMONIC (m/44'/60'/0'/0/i). */
export function devnetAccounts(count: number, mnemonic = DEVNET_MNEMONIC): AnvilAccount[] {
  // BIP-39 seed: PBKDF2-HMAC-SHA512, 2048 rounds, salt "mnemonic" (no passphrase).
  const seed = pbkdf2Sync(mnemonic.normalize('NFKD'), 'mnemonic', 2048, 64, 'sha512');
  const master = HDKey.fromMasterSeed(new Uint8Array(seed));
  const out: AnvilAccount[] = [];
  for (let i = 0; i < count; i++) {
    const account = hdKeyToAccount(master, { addressIndex: i });
    const key = account.getHdKey().privateKey;
    if (!key) throw new FirnError('E_INTERNAL', 'HD derivation gave no private key');
    out.push({ address: account.address, privateKey: bytesToHex(key) });
  }
  return out;
}

async function rpcAnswers(rpcUrl: string): Promise<number | undefined> {
  try {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      // A listener that accepts and never answers (not anvil) must not stall the start-up loop.
      signal: AbortSignal.timeout(2_000),
    });
    const body = (await res.json()) as { result?: string };
    return typeof body.result === 'string' ? Number.parseInt(body.result, 16) : undefined;
  } catch {
    return undefined;
  }
}

/** Most bytes of anvil's start-up banner read while looking for its "Listening on" line. */
const BANNER_CAP = 256 * 1024;

/**
 * Start a local anvil on 127.0.0.1 and wait until its RPC answers.
 *
 * Without `opts.port`, anvil binds port 0 itself and the port is read from its "Listening on
 * 127.0.0.1:PORT" line: asking the OS for a free port and handing it to anvil would leave a gap in
 * which another process (a parallel test file's anvil or client socket) can take it.
 *
 * @throws FirnError E_UNAVAILABLE when anvil exits at start (its stderr, capped, in the message);
 *   E_TIMEOUT when its RPC does not answer within `opts.startTimeoutMs`.
 */
export async function startAnvil(opts: StartAnvilOptions = {}): Promise<AnvilInstance> {
  const count = opts.accounts ?? 10;
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(opts.port ?? 0),
    '--chain-id',
    String(opts.chainId ?? DEVNET_CHAIN_ID),
    '--accounts',
    String(count),
    '--balance',
    String(opts.balanceEth ?? 10_000),
    '--mnemonic',
    DEVNET_MNEMONIC,
  ];
  // With a port given nothing needs reading from stdout; anvil's banner and request log stay off.
  if (opts.port !== undefined) args.push('--silent');
  if (opts.blockTime !== undefined) args.push('--block-time', String(opts.blockTime));
  if (opts.hardfork !== undefined) args.push('--hardfork', opts.hardfork);
  installExitHook();
  const child = spawn(anvilBinaryPath(), args, {
    stdio: ['ignore', opts.port === undefined ? 'pipe' : 'ignore', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString('utf8');
  });
  let port = opts.port;
  let banner = '';
  // Read until the "Listening on" line, then keep draining (anvil logs each request) unread.
  child.stdout?.on('data', (d: Buffer) => {
    if (port !== undefined || banner.length > BANNER_CAP) return;
    banner += d.toString('utf8');
    const m = /Listening on 127\.0\.0\.1:(\d{1,5})\b/.exec(banner);
    if (m) port = Number(m[1]);
  });
  let exited = false;
  const exitedP = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    }),
  );
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  let chainId: number | undefined;
  while (chainId === undefined) {
    if (exited) throw new FirnError('E_UNAVAILABLE', `anvil exited at start: ${stderr.trim().slice(0, 500)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      const where = port === undefined ? 'a port (no "Listening on" line)' : `http://127.0.0.1:${port}`;
      throw new FirnError('E_TIMEOUT', `anvil did not answer on ${where}`);
    }
    if (port !== undefined) chainId = await rpcAnswers(`http://127.0.0.1:${port}`);
    if (chainId === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  const bound = port as number;
  const rpcUrl = `http://127.0.0.1:${bound}`;
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exitedP;
    clearTimeout(timer);
  };
  return { rpcUrl, port: bound, chainId, accounts: devnetAccounts(count), stop, pid: child.pid ?? -1 };
}
