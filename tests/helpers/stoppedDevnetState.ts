import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * The addresses a fresh devnet's deployment gets on anvil (chain 31337, the deployer's first
 * nonces): what a devnet state file names. Nothing needs to be deployed there for a test that
 * only sees how a command reads or refuses them.
 */
export const DEVNET_CONTRACTS = {
  registry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
  verifierSet: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  jobMarket: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
  dataLedger: '0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9',
  rewards: '0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9',
  timelock: '0x5FC8d32690cc91D4c39d9d3abcBD16989F875707',
} as const;

/**
 * The URL of a local port that was free a moment ago (`http://127.0.0.1:PORT`): nothing listens
 * on it any more, like a stopped anvil, so a request to it is refused.
 */
export async function stoppedRpcUrl(): Promise<string> {
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  return `http://127.0.0.1:${port}`;
}

/**
 * Writes `<dir>/state.json`, a devnet state file as `npm start` leaves it (chain 31337, every
 * contract of DEVNET_CONTRACTS, deploy block 0) whose RPC is `rpcUrl`. Returns the file's path.
 */
export function writeDevnetState(dir: string, rpcUrl: string): string {
  const state = join(dir, 'state.json');
  writeFileSync(
    state,
    JSON.stringify({ rpcUrl, chainId: 31337, contracts: DEVNET_CONTRACTS, deployBlock: '0' }),
  );
  return state;
}

/**
 * Writes `<dir>/state.json`, a devnet state file as a new user's `--devnet` flag reads it, whose
 * RPC is a local port that was free a moment ago (nothing listens on it any more, like a stopped
 * anvil): a command that asks the chain anything fails E_UNAVAILABLE, so a test sees whether a
 * mistake was refused locally first. Chain 31337, the devnet's registry and job market addresses,
 * and a made-up requester key. Returns the file's path.
 */
export async function writeStoppedDevnetState(dir: string): Promise<string> {
  const state = join(dir, 'state.json');
  writeFileSync(
    state,
    JSON.stringify({
      rpcUrl: await stoppedRpcUrl(),
      chainId: 31337,
      contracts: { registry: DEVNET_CONTRACTS.registry, jobMarket: DEVNET_CONTRACTS.jobMarket },
      // A made-up test key (a repeated byte), never a real account's.
      accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
    }),
  );
  return state;
}
