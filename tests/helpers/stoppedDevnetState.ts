import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * Writes `<dir>/state.json`, a devnet state file as a new user's `--devnet` flag reads it, whose
 * RPC is a local port that was free a moment ago (nothing listens on it any more, like a stopped
 * anvil): a command that asks the chain anything fails E_UNAVAILABLE, so a test sees whether a
 * mistake was refused locally first. Chain 31337, the devnet's registry and job market addresses,
 * and a made-up requester key. Returns the file's path.
 */
export async function writeStoppedDevnetState(dir: string): Promise<string> {
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  const state = join(dir, 'state.json');
  writeFileSync(
    state,
    JSON.stringify({
      rpcUrl: `http://127.0.0.1:${port}`,
      chainId: 31337,
      contracts: {
        registry: '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512',
        jobMarket: '0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0',
      },
      // A made-up test key (a repeated byte), never a real account's.
      accounts: { requester: { privateKey: `0x${'ab'.repeat(32)}` } },
    }),
  );
  return state;
}
