import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, startAnvil } from '@firn/chain';
import { createPublicClient, http } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeployOptions, runDeploy } from '../../packages/cli/src/commands/deploy.ts';
import { devnetDeployOptions } from '../../packages/cli/test/cliDeployment.ts';

// A careless operator: `--out` names a folder that does not exist. The deployment file is the only
// record of the addresses ("a lost deployment file means lost addresses", docs/decisions/1182), so
// the command must refuse before it sends any transaction, not deploy and then fail to write.
const dir = mkdtempSync(join(tmpdir(), 'firn-deploy-atk-'));
let anvil: AnvilInstance;
let keyFile: string;

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 1, chainId: 434_343 });
  keyFile = join(dir, 'deployer.key');
  writeFileSync(keyFile, `${anvil.accounts[0]!.privateKey}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await anvil?.stop();
});

describe('attack: firn deploy --out in a folder that does not exist', () => {
  const refusedBeforeSending = async (out: string, force?: boolean) => {
    const o: DeployOptions = {
      ...devnetDeployOptions(anvil.rpcUrl, keyFile, out),
      chainId: '434343',
      ...(force ? { force } : {}),
    };
    const pub = createPublicClient({ transport: http(anvil.rpcUrl) });
    const before = await pub.getTransactionCount({ address: anvil.accounts[0]!.address });
    const err = await runDeploy(o).then(
      () => undefined,
      (e: unknown) => e,
    );
    const after = await pub.getTransactionCount({ address: anvil.accounts[0]!.address });
    expect(after).toBe(before);
    expect(err).toMatchObject({ code: 'E_INVALID_INPUT' });
    expect(String((err as Error).message)).toMatch(/--out/);
  };

  it('is refused (E_INVALID_INPUT naming --out) before any transaction is sent', async () => {
    await refusedBeforeSending(join(dir, 'no-such-folder', 'deployment.json'));
  }, 60_000);

  it('--force with an --out that is a folder is refused before any transaction is sent', async () => {
    const folder = join(dir, 'a-folder');
    mkdirSync(folder);
    await refusedBeforeSending(folder, true);
  }, 60_000);
});
