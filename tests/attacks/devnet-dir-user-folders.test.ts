import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevnet } from '@firn/cli';
import { afterAll, describe, expect, it } from 'vitest';

// `firn devnet --dir .` in a user's project folder: the folder holds only names a devnet also
// writes (`apps/`, `keys/`, `logs/`), but they are the user's own: the app folder they are about
// to host (`--app apps/myapp`), their wallet key. The devnet wipes only what a devnet wrote, so
// it must refuse this folder (or leave those files), never delete them.

const root = mkdtempSync(join(tmpdir(), 'firn-devnet-user-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("attack: --dir on a folder whose entries are named like a devnet's but are the user's", () => {
  it("keeps the user's apps/ and keys/ files", async () => {
    const dir = join(root, 'project');
    mkdirSync(join(dir, 'apps', 'myapp'), { recursive: true });
    mkdirSync(join(dir, 'keys'), { recursive: true });
    writeFileSync(join(dir, 'apps', 'myapp', 'app.json'), '{"name":"myapp"}');
    writeFileSync(join(dir, 'keys', 'wallet.key'), 'user key');
    await expect(
      startDevnet({
        dir,
        nodes: 1,
        verifiers: 1,
        readyTimeout: 5,
        dashboard: false,
        log: () => {},
        // Stop right after anvil (if the start gets that far): nothing heavy runs.
        rpcVia: async () => {
          throw new Error('stop here');
        },
      }),
    ).rejects.toThrow();
    expect(existsSync(join(dir, 'apps', 'myapp', 'app.json'))).toBe(true);
    expect(readFileSync(join(dir, 'keys', 'wallet.key'), 'utf8')).toBe('user key');
  }, 60_000);
});
