import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { environmentFromEnv } from '../../packages/enclave/src/evidence/environmentFromEnv.ts';
import { fakeTsmKernel } from '../../packages/enclave/test/fakeTsmKernel.ts';

// A malicious host against everything a TD's enclave holds (TDX, the GPU node of
// docs/deploy-tdx-h100.md).
//
// FIRN_GPU_COLLECTOR is an argv the HOST chooses (`firn node start --gpu-collector`, passed through
// enclaveSupervisor's env allow-list) and it is not part of the measurement; environmentFromEnv.ts
// turns it into a NvidiaCommandCollector that the enclave process spawns at every attestation,
// inside the TD. So the host runs code of its choice inside the TEE boundary (e.g. `node -e ...`
// from the measured root filesystem). There it can write report data of its choice to
// configfs-tsm and get a genuine quote over it, i.e. a key request binding the genuine broker's
// nonce and the host's own ephemeral HPKE key: the broker releases the TD's sealing key to the
// host, which then opens the node's sealed enclave keys. A measured --kms-address pin would not
// stop this. Here the spawned program only leaves a marker (no TDX hardware in the test: configfs-tsm
// is faked over a captured real TDX quote, as in packages/kms/src/tdxLauncher.test.ts).
const dir = mkdtempSync(join(tmpdir(), 'firn-collector-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the host picks the program a TD enclave runs to collect GPU evidence', () => {
  it('the enclave runs no program whose argv the host chose', async () => {
    const marker = join(dir, 'host-code-ran-inside-the-td');
    const hostArgv = [
      process.execPath,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(marker)}, 'pid ' + process.pid + ' parent ' + process.ppid); process.stdout.write('[]')`,
    ];
    const env = await environmentFromEnv(
      { FIRN_TEE: 'tdx', FIRN_FS_ROOT: '/', FIRN_GPU_COLLECTOR: JSON.stringify(hostArgv) },
      new Uint8Array(32),
      { tsmFs: fakeTsmKernel() },
    );
    // What `attest` does for a GPU node (enclaveProgram.ts: env.gpu.collect(deriveGpuNonce(nonce))).
    await env.gpu?.collect(new Uint8Array(32).fill(7)).catch(() => undefined);
    // Safe outcome: nothing the host chose ran inside the enclave's boundary.
    expect(existsSync(marker)).toBe(false);
  }, 60_000);
});
