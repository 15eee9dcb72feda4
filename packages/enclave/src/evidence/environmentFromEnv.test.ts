import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dcapSelfIdentity } from '@firn/attestation';
import { bytesToHex, computeEnclaveId, measurementDigest } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { environmentFromEnv, TDX_GPU_COLLECTOR_PATH } from './environmentFromEnv.ts';
import { fakeTsmKernel } from '../../test/fakeTsmKernel.ts';

/**
 * The enclave program started with FIRN_TEE=sgx-gramine over a fake /dev/attestation holding a
 * captured real SGX quote: it names itself (measurement, PPID, Enclave ID) from that quote and
 * seals its keys with the Gramine sealing key. Not covered: a real Gramine runtime, which would
 * return a quote binding the report data written (the captured quote binds other data).
 */
const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

describe('environmentFromEnv on a Gramine SGX tree', () => {
  it('derives the enclave identity from its own quote and seals keys across restarts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-env-gramine-'));
    mkdirSync(join(root, 'dev', 'attestation', 'keys'), { recursive: true });
    const quote = readFileSync(join(FIX, 'sgx_quote.bin'));
    writeFileSync(join(root, 'dev', 'attestation', 'quote'), quote);
    writeFileSync(join(root, 'dev', 'attestation', 'user_report_data'), Buffer.alloc(64));
    writeFileSync(join(root, 'dev', 'attestation', 'keys', '_sgx_mrenclave'), Buffer.alloc(16, 9));
    const env = await environmentFromEnv({ FIRN_TEE: 'sgx-gramine' }, new Uint8Array(32), { fsRoot: root });
    const self = dcapSelfIdentity(quote);
    const program = createEnclaveProgram(env);
    const first = (await program.handle('init', {})) as {
      enclaveId: string;
      enclaveAddress: string;
      measurement: string;
      sealedKeys: unknown;
    };
    expect(first.measurement).toBe(bytesToHex(measurementDigest('sgx', self.registers)));
    expect(first.enclaveId).toBe(
      bytesToHex(computeEnclaveId('sgx', self.platformId, measurementDigest('sgx', self.registers))),
    );
    const again = createEnclaveProgram(
      await environmentFromEnv({ FIRN_TEE: 'sgx-gramine' }, new Uint8Array(32), { fsRoot: root }),
    );
    const second = (await again.handle('init', { sealedKeys: first.sealedKeys })) as {
      enclaveAddress: string;
    };
    expect(second.enclaveAddress).toBe(first.enclaveAddress);
    rmSync(root, { recursive: true, force: true });
  });

  it('reads no path the host names: FIRN_FS_ROOT relocates nothing (only an in-process test seam does)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-env-fsroot-'));
    mkdirSync(join(root, 'dev', 'attestation', 'keys'), { recursive: true });
    writeFileSync(join(root, 'dev', 'attestation', 'quote'), readFileSync(join(FIX, 'sgx_quote.bin')));
    writeFileSync(join(root, 'dev', 'attestation', 'keys', '_sgx_mrenclave'), Buffer.alloc(16, 9));
    try {
      // The host's variable would point /dev/attestation at a tree of its making: it is not read.
      await expect(
        environmentFromEnv({ FIRN_TEE: 'sgx-gramine', FIRN_FS_ROOT: root }, new Uint8Array(32)),
      ).rejects.toThrow();
      await expect(
        environmentFromEnv({ FIRN_TEE: 'sgx-gramine' }, new Uint8Array(32), { fsRoot: root }),
      ).resolves.toMatchObject({ provider: { teeType: 'sgx' } });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a TD runs only the GPU collector fixed on its measured filesystem, never a host argv', async () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-env-gpu-'));
    try {
      const kernel = fakeTsmKernel(readFileSync(join(FIX, 'tdx_quote.bin')));
      const marker = join(root, 'host-argv-ran');
      const hostArgv = [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`];
      const none = await environmentFromEnv(
        { FIRN_TEE: 'tdx', FIRN_GPU_COLLECTOR: JSON.stringify(hostArgv) },
        new Uint8Array(32),
        { tsmFs: kernel, fsRoot: root },
      );
      expect(none.gpu).toBeUndefined();
      expect(existsSync(marker)).toBe(false);
      // The collector at TDX_GPU_COLLECTOR_PATH under the root runs with the hex nonce.
      const collector = join(root, ...TDX_GPU_COLLECTOR_PATH.split('/'));
      mkdirSync(dirname(collector), { recursive: true });
      writeFileSync(
        collector,
        `#!${process.execPath}\nprocess.stdout.write(JSON.stringify([{ arch: 'HOPPER', nonce: process.argv[2], evidence: 'e', certificate: 'c' }]));\n`,
        { mode: 0o755 },
      );
      const env = await environmentFromEnv({ FIRN_TEE: 'tdx' }, new Uint8Array(32), {
        tsmFs: kernel,
        fsRoot: root,
      });
      const out = await env.gpu!.collect(new Uint8Array(32).fill(7));
      expect(out).toEqual([{ arch: 'HOPPER', nonce: '07'.repeat(32), evidence: 'e', certificate: 'c' }]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses an unknown backend', async () => {
    await expect(environmentFromEnv({ FIRN_TEE: 'sev' }, new Uint8Array(32))).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
  });
});
