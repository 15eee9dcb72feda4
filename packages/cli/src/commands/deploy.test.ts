import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, createFirnClients, isMeasurementAllowed, startAnvil } from '@firn/chain';
import { TEE_TYPES } from '@firn/core';
import { createPublicClient, http, keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveChain } from '../chainArgs.ts';
import { devnetDeployOptions } from '../../test/cliDeployment.ts';
import { type DeployOptions, measurementFlag, runDeploy } from './deploy.ts';

// `firn deploy` against anvil run with a chain id other than the devnet's: the deployment file it
// writes is what `--deployment` takes, and it is refused against an RPC of another chain.
const CHAIN_ID = 424_242;
const dir = mkdtempSync(join(tmpdir(), 'firn-deploy-'));
const measurement = keccak256(toHex('deploy-cli-measurement'));
let anvil: AnvilInstance;
let other: AnvilInstance;
let keyFile: string;

const base = (over: Partial<DeployOptions>): DeployOptions => ({
  ...devnetDeployOptions(anvil.rpcUrl, keyFile, join(dir, 'deployment.json')),
  ...over,
});

const nonce = (a: AnvilInstance) =>
  createPublicClient({ transport: http(a.rpcUrl) }).getTransactionCount({ address: a.accounts[0]!.address });

beforeAll(async () => {
  [anvil, other] = await Promise.all([
    startAnvil({ accounts: 2, chainId: CHAIN_ID }),
    startAnvil({ accounts: 2 }),
  ]);
  keyFile = join(dir, 'deployer.key');
  writeFileSync(keyFile, `${anvil.accounts[0]!.privateKey}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await Promise.all([anvil?.stop(), other?.stop()]);
});

describe('firn deploy', () => {
  it('refuses an RPC that answers another chain id before sending anything', async () => {
    expect(anvil.chainId).toBe(CHAIN_ID);
    await expect(runDeploy(base({ chainId: '1' }))).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringContaining(`answers chain id ${CHAIN_ID}, not --chain-id 1`),
    });
    expect(await nonce(anvil)).toBe(0);
  });

  it('refuses the simulated TEE in a production deployment before sending anything', async () => {
    await expect(
      runDeploy(
        base({ profile: 'production', governanceDelay: '86400', measurement: [`simulated:${measurement}`] }),
      ),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    expect(await nonce(anvil)).toBe(0);
  });

  it('deploys, writes the deployment file, and the other commands take it', async () => {
    const r = await runDeploy(base({ chainId: String(CHAIN_ID), measurement: [`simulated:${measurement}`] }));
    const file = JSON.parse(readFileSync(r.file, 'utf8')) as Record<string, unknown>;
    expect(file.chainId).toBe(CHAIN_ID);
    expect(file.rpcUrl).toBeUndefined(); // not recorded unless --record-rpc
    expect(file.registry).toBe(r.deployment.registry);
    expect(BigInt(file.deployBlock as string)).toBeGreaterThan(0n);
    const chain = await resolveChain({ deployment: r.file, rpc: anvil.rpcUrl });
    expect(chain.deployment).toEqual(r.deployment);
    const clients = createFirnClients(anvil.rpcUrl, undefined, chain.deployment);
    expect(await isMeasurementAllowed(clients, { teeType: TEE_TYPES.simulated, measurement })).toBe(true);
    expect(await clients.public.getBytecode({ address: chain.deployment.jobMarket })).toMatch(
      /^0x[0-9a-f]{100,}/,
    );

    // The real CLI reads the registry through the file.
    const cli = spawnSync(
      process.execPath,
      ['packages/cli/bin/firn.mjs', 'nodes', 'list', '--deployment', r.file, '--rpc', anvil.rpcUrl, '--json'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(cli.stderr).not.toMatch(/error/);
    expect(JSON.parse(cli.stdout)).toEqual([]);

    // Attack: the same file against an RPC of another chain (addresses there are someone else's).
    await expect(resolveChain({ deployment: r.file, rpc: other.rpcUrl })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringContaining(
        `is for chain id ${CHAIN_ID} but the RPC answers chain id ${other.chainId}`,
      ),
    });
    // A deployment file is never overwritten by accident.
    const before = await nonce(anvil);
    await expect(runDeploy(base({}))).rejects.toMatchObject({ message: expect.stringContaining('--force') });
    expect(await nonce(anvil)).toBe(before);
  });

  it('warns when the key file is readable by other accounts, and not when it is 0600', async () => {
    const open = join(dir, 'shared.key');
    writeFileSync(open, `${anvil.accounts[0]!.privateKey}\n`);
    chmodSync(open, 0o644);
    const warned: string[] = [];
    // Refused before sending anything (another chain id): the warning comes first.
    await expect(
      runDeploy(base({ keyFile: open, chainId: '1', out: join(dir, 'never.json') }), {
        warn: (m) => warned.push(m),
      }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain(open);
    expect(warned[0]).toContain('chmod 600');
    const quiet: string[] = [];
    await expect(
      runDeploy(base({ chainId: '1', out: join(dir, 'never.json') }), { warn: (m) => quiet.push(m) }),
    ).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
    expect(quiet).toEqual([]);
    // The command prints it on stderr, so --json output on stdout stays one JSON value.
    const cli = spawnSync(
      process.execPath,
      [
        'packages/cli/bin/firn.mjs',
        'deploy',
        '--rpc',
        anvil.rpcUrl,
        '--key-file',
        open,
        '--chain-id',
        '1',
        '--out',
        join(dir, 'never.json'),
        '--json',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(cli.stderr).toMatch(
      /^warning: --key-file .*shared\.key is open to its group and every account .*\(mode 0644\)/m,
    );
    expect(JSON.parse(cli.stdout)).toMatchObject({ error: { code: 'E_INVALID_INPUT' } });
  });

  it('parses --measurement TEE:0xDIGEST and refuses malformed ones', () => {
    expect(measurementFlag(`tdx:${measurement}`)).toEqual({ teeType: TEE_TYPES.tdx, measurement });
    for (const bad of [`tdx:${measurement.slice(0, 10)}`, `foo:${measurement}`, measurement])
      expect(() => measurementFlag(bad)).toThrow(/--measurement/);
  });
});
