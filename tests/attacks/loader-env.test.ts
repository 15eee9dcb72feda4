import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';

// Attack (malicious host): the enclave refuses Node options (execArgv, NODE_OPTIONS) that would
// load code from outside its image, but not the dynamic loader's variables. A host that starts
// the image entry with LD_PRELOAD (or LD_LIBRARY_PATH ahead of the image's $ORIGIN RUNPATH for
// libonnxruntime) runs its own native code inside the enclave process, and the enclave starts
// and reports the unchanged image measurement.
const root = mkdtempSync(join(tmpdir(), 'firn-attack-ld-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const marker = join(root, 'host-code-ran');
const src = join(root, 'preload.c');
writeFileSync(
  src,
  `#include <stdio.h>
__attribute__((constructor)) static void run(void) { FILE *f = fopen(${JSON.stringify(marker)}, "w"); if (f) fclose(f); }
`,
);
const so = join(root, 'preload.so');
const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', so, src]);
const libDir = join(root, 'lib');
mkdirSync(libDir);

function start(env: Record<string, string>) {
  const r = spawnSync(process.execPath, [image.entry], {
    env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath, ...env },
    input: '',
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr.toString('utf8') };
}

describe('attack: dynamic loader variables on the simulated enclave', () => {
  it('an enclave started with LD_PRELOAD refuses to run', () => {
    expect(cc.status, 'a C compiler builds the preload library').toBe(0);
    const r = start({ LD_PRELOAD: so });
    expect(existsSync(marker), 'the host library ran inside the enclave process').toBe(true);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/E_IMAGE_MISMATCH/);
  }, 60_000);

  it('an enclave started with LD_LIBRARY_PATH or LD_AUDIT refuses to run', () => {
    for (const env of [{ LD_LIBRARY_PATH: libDir }, { LD_AUDIT: so }]) {
      const r = start(env);
      expect(r.status, JSON.stringify(env)).toBe(1);
      expect(r.stderr).toMatch(/E_IMAGE_MISMATCH/);
    }
  }, 60_000);
});
