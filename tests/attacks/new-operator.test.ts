import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, deployFirn, type FirnDeployment, startAnvil } from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentToJson } from '../../packages/cli/src/chainArgs.ts';

// A careless new operator / governor / verifier following the README and --help of the newer
// commands (gov, rewards, attest verify-gpu). Every mistake must be named (never a bare
// E_INTERNAL), and no governance command may report success for an action that changed nothing.
const bin = join(__dirname, '../../packages/cli/bin/firn.mjs');
const dir = mkdtempSync(join(tmpdir(), 'firn-new-operator-'));
const ETH = 10n ** 18n;
let anvil: AnvilInstance;
let deployment: FirnDeployment;
let deploymentFile: string;

function firn(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function expectUsefulError(r: { code: number | null; out: string }, cause: string) {
  expect(r.code, r.out).not.toBe(0);
  expect(r.out).not.toMatch(/E_INTERNAL/);
  expect(r.out).toContain(cause);
}

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 2 });
  deployment = await deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    governanceDelay: 1,
    minNodeStake: ETH,
    minVerifierStake: ETH,
    unbondingPeriod: 60,
    challengeWindow: 30,
    slashAmount: ETH,
    epochLength: 60,
    poolDeposit: ETH / 10n,
    pollingIntervalMs: 50,
  });
  deploymentFile = join(dir, 'deployment.json');
  writeFileSync(deploymentFile, JSON.stringify({ rpcUrl: anvil.rpcUrl, ...deploymentToJson(deployment) }));
  writeFileSync(join(dir, 'gov.key'), anvil.accounts[0]!.privateKey);
}, 60_000);
afterAll(() => anvil?.stop());

describe('careless new operator', () => {
  it('rewards show with a mistyped --epochs names the flag, not E_INTERNAL', () => {
    expectUsefulError(
      firn('rewards', 'show', '--deployment', deploymentFile, '--epochs', 'five'),
      '--epochs',
    );
  });

  it('attest verify-gpu with a missing --rims directory names it, not E_INTERNAL', () => {
    writeFileSync(join(dir, 'evidence.json'), '[]');
    const missing = join(dir, 'no-such-rims');
    expectUsefulError(
      firn(
        'attest',
        'verify-gpu',
        '--evidence',
        join(dir, 'evidence.json'),
        '--nonce',
        `0x${'ab'.repeat(32)}`,
        '--at',
        '1700000000',
        '--rims',
        missing,
      ),
      missing,
    );
  });

  it('gov revoke-measurement of a measurement that is not allow-listed (a typo) refuses instead of reporting "done"', () => {
    // The governor means to revoke a compromised SGX build but mistypes the digest (or forgets
    // --tee, which defaults to simulated): reporting success would leave the build allowed.
    const typo = `0x${'5a'.repeat(32)}`;
    const r = firn(
      'gov',
      'revoke-measurement',
      'sgx',
      typo,
      '--deployment',
      deploymentFile,
      '--key-file',
      join(dir, 'gov.key'),
    );
    expectUsefulError(r, typo);
    expect(r.out).not.toMatch(/done/);
  }, 60_000);
});
