import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dcapSelfIdentity } from '@firn/attestation';
import { bytesToHex, computeEnclaveId, measurementDigest } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { environmentFromEnv } from './environmentFromEnv.ts';

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
    const env = await environmentFromEnv({ FIRN_TEE: 'sgx-gramine', FIRN_FS_ROOT: root }, new Uint8Array(32));
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
      await environmentFromEnv({ FIRN_TEE: 'sgx-gramine', FIRN_FS_ROOT: root }, new Uint8Array(32)),
    );
    const second = (await again.handle('init', { sealedKeys: first.sealedKeys })) as {
      enclaveAddress: string;
    };
    expect(second.enclaveAddress).toBe(first.enclaveAddress);
  });

  it('refuses a GPU collector that is not a JSON argv list, typed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-env-gpu-'));
    mkdirSync(join(root, 'dev', 'attestation'), { recursive: true });
    writeFileSync(join(root, 'dev', 'attestation', 'quote'), readFileSync(join(FIX, 'sgx_quote.bin')));
    for (const bad of ['not json', '{"a":1}', '[]', '[1,2]'])
      await expect(
        environmentFromEnv(
          { FIRN_TEE: 'sgx-gramine', FIRN_FS_ROOT: root, FIRN_GPU_COLLECTOR: bad },
          new Uint8Array(32),
        ),
      ).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });

  it('refuses an unknown backend', async () => {
    await expect(environmentFromEnv({ FIRN_TEE: 'sev' }, new Uint8Array(32))).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
  });
});
