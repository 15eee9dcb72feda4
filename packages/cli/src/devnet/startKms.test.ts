import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  allowMeasurementCall,
  type AnvilInstance,
  createFirnClients,
  isMeasurementAllowed,
  revokeMeasurementCall,
  startAnvil,
} from '@firn/chain';
import { bytesToHex, measurementDigest, repoRoot, TEE_TYPES } from '@firn/core';
import { createEnclaveProgram } from '@firn/enclave';
import { environmentFromEnv } from '../../../enclave/src/evidence/environmentFromEnv.ts';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployForCli } from '../../test/cliDeployment.ts';
import { runGovernance } from '../commands/gov.ts';
import { type DevnetKms, startDevnetKms, stopDevnetKms } from './startKms.ts';

// The devnet's key broker against a real anvil and the real contracts: it is started with the
// chain (--deployment), so once governance revokes a measurement (`firn gov revoke-measurement`)
// the broker stops releasing sealing keys to it, even though its static --allow-measurement
// list still names it.
const dir = mkdtempSync(join(tmpdir(), 'firn-devnet-kms-'));
const CODE = new Uint8Array(createHash('sha256').update('firn devnet kms image').digest());
const measurement = bytesToHex(measurementDigest('simulated', [CODE]));
let anvil: AnvilInstance;
let kms: DevnetKms | undefined;

beforeAll(async () => {
  for (const d of ['platforms', 'logs']) mkdirSync(join(dir, d), { recursive: true });
  anvil = await startAnvil({ accounts: 2 });
}, 60_000);
afterAll(async () => {
  if (kms) await stopDevnetKms(kms.child);
  await anvil?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the devnet key broker reads the chain', () => {
  it('stops releasing a sealing key once governance revokes the measurement', async () => {
    const { deployment, deploymentFile } = await deployForCli(anvil, dir, 1);
    const keyFile = join(dir, 'deployer.key');
    writeFileSync(keyFile, anvil.accounts[0]!.privateKey, { mode: 0o600 });
    const gov = { deployment: deploymentFile, keyFile, mine: true };
    const args = { teeType: TEE_TYPES.simulated, measurement };
    await runGovernance(gov, 'allow-measurement', async (c) => ({
      calls: [allowMeasurementCall(c.addresses, args)],
    }));
    const root = await createSimulatedRoot();
    const rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, root.certificatePem);
    const spawnFirn = (a: string[], logFile: string) => {
      const child = spawn(process.execPath, [join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs'), ...a], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = createWriteStream(logFile, { flags: 'a' });
      child.stdout!.pipe(out);
      child.stderr!.pipe(out);
      return child;
    };
    // As the devnet does: a first start names the broker's identity, the restart keeps it.
    const first0 = await startDevnetKms({ dir, root, rootFile, measurement, spawnFirn });
    await stopDevnetKms(first0.child);
    kms = await startDevnetKms({
      dir,
      root,
      rootFile,
      measurement,
      deploymentFile,
      spawnFirn,
    });
    expect(kms.address).toBe(first0.address);
    const platformFile = join(dir, 'platforms', 'td.json');
    writeFileSync(platformFile, JSON.stringify(await createSimulatedPlatform(root)));
    // An enclave whose measured image pins this broker (decision 1710).
    const enclave = async () =>
      createEnclaveProgram(
        await environmentFromEnv(
          { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformFile, FIRN_KMS_URL: kms!.url },
          CODE,
          {
            keyBroker: { address: kms!.address },
          },
        ),
      );
    const first = (await (await enclave()).handle('init', {})) as {
      sealedKeys: unknown;
      enclaveAddress: string;
    };
    const again = (await (await enclave()).handle('init', { sealedKeys: first.sealedKeys })) as {
      enclaveAddress: string;
    };
    expect(again.enclaveAddress).toBe(first.enclaveAddress);

    await runGovernance(gov, 'revoke-measurement', async (c) => ({
      calls: [revokeMeasurementCall(c.addresses, args)],
    }));
    expect(await isMeasurementAllowed(createFirnClients(anvil.rpcUrl, undefined, deployment), args)).toBe(
      false,
    );
    // The revoked code gets no sealing key: it can neither open its keys nor make new ones.
    await expect((await enclave()).handle('init', { sealedKeys: first.sealedKeys })).rejects.toMatchObject({
      code: expect.stringMatching(/^E_/),
    });
    await expect((await enclave()).handle('init', {})).rejects.toMatchObject({
      code: expect.stringMatching(/^E_/),
    });
  }, 120_000);
});
