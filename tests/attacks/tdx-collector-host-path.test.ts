import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  environmentFromEnv,
  TDX_GPU_COLLECTOR_PATH,
} from '../../packages/enclave/src/evidence/environmentFromEnv.ts';
import { fakeTsmKernel } from '../../packages/enclave/test/fakeTsmKernel.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

// A malicious host against everything a TD's enclave holds (TDX GPU node, docs/deploy-tdx-h100.md).
//
// 1711 fixed the GPU collector at TDX_GPU_COLLECTOR_PATH on the measured root filesystem. The
// deploy guide says that file wraps NVIDIA's attestation SDK ("wrapped in an executable ... that
// prints the SDK's evidence JSON list"), i.e. a script that runs the SDK's interpreter/tools by name.
// The enclave spawns it with the enclave process's whole environment (nvidiaCollector.ts: spawn
// without `env`), and that environment carries PATH, which the supervisor copies from the HOST's
// own environment (enclaveSupervisor.ts command(): `PATH: process.env.PATH`, "so that Gramine and
// the GPU collector resolve"). PATH is in neither ENCLAVE_ENV_ALLOW_LIST nor 1712's audit table,
// and main.ts refuses only NODE_* / LD_*. So the host puts a directory of its own first on PATH and
// the measured wrapper runs the host's `python3` inside the TD at every attestation: the same
// "host code inside the TD boundary" as 1711 (genuine quotes over report data of the host's
// choice -> the TD's sealing key from the broker). Here the host's program leaves a marker.
const dir = mkdtempSync(join(tmpdir(), 'firn-collector-path-'));
const savedPath = process.env.PATH;
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});

describe('the host chooses what the fixed TD GPU collector runs, through PATH', () => {
  it('no program from a host-chosen PATH runs inside the TD', async () => {
    // The measured guest: the fixed collector, a wrapper around the SDK as the deploy guide asks.
    const root = join(dir, 'guest');
    const collector = join(root, ...TDX_GPU_COLLECTOR_PATH.split('/'));
    mkdirSync(dirname(collector), { recursive: true });
    writeFileSync(collector, '#!/bin/sh\nexec python3 -m nv_attestation_sdk.collect "$1"\n');
    chmodSync(collector, 0o755);

    // The host: a `python3` of its own, first on the PATH of the process that starts the node.
    const marker = join(dir, 'host-code-ran-inside-the-td');
    const hostBin = join(dir, 'host-bin');
    mkdirSync(hostBin);
    writeFileSync(
      join(hostBin, 'python3'),
      `#!/bin/sh\necho "uid $(id -u) args $*" > ${JSON.stringify(marker)}\nprintf '[]'\n`,
    );
    chmodSync(join(hostBin, 'python3'), 0o755);
    process.env.PATH = `${hostBin}:${savedPath}`;

    // The supervisor hands a TD's enclave process no PATH (decision 1730; this first asserted
    // that it passed the host's, the precondition of the attack, which the fix removes).
    const cmd = new EnclaveSupervisor({
      bundlePath: '/opt/firn/image/app/enclave.mjs',
      env: { FIRN_TEE: 'tdx', FIRN_KMS_URL: 'http://kms.example:7400' },
      logger: createLogger({}, { write: () => undefined }),
    }).command();
    expect(cmd.env.PATH).toBeUndefined();

    // Inside the enclave process: a GPU node's `attest`. The host's PATH is left in the process
    // environment here, as if it had reached the enclave another way: the collector still must
    // not inherit it.
    const env = await environmentFromEnv(cmd.env, new Uint8Array(32), {
      tsmFs: fakeTsmKernel(),
      fsRoot: root,
    });
    expect(env.gpu).toBeDefined();
    await env.gpu?.collect(new Uint8Array(32).fill(7)).catch(() => undefined);
    process.env.PATH = savedPath;

    // Safe outcome: nothing the host chose ran inside the enclave's boundary.
    expect(existsSync(marker) ? readFileSync(marker, 'utf8') : undefined).toBeUndefined();
  }, 60_000);
});
