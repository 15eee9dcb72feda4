import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';

// Attack (malicious host): the enclave verifies its image in main(), but the bundle loads
// onnxruntime's native binding (and with it ort/libonnxruntime.so.1) while its modules are
// evaluated, before main() runs. A host that swaps libonnxruntime.so.1 gets its native code run
// inside the key-holding enclave process before the check; a library that also hides itself from
// the check (answering the check's reads with the original bytes) is never caught.
const root = mkdtempSync(join(tmpdir(), 'firn-attack-native-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const marker = join(root, 'host-code-ran');
const src = join(root, 'lib.c');
writeFileSync(
  src,
  `#include <stdio.h>
__attribute__((constructor)) static void run(void) { FILE *f = fopen(${JSON.stringify(marker)}, "w"); if (f) fclose(f); }
`,
);
const so = join(root, 'lib.so');
const cc = spawnSync('cc', ['-shared', '-fPIC', '-o', so, src]);

describe('attack: a swapped native library runs before the image check', () => {
  it('no host library is loaded into the enclave process before its image is verified', () => {
    expect(cc.status, 'a C compiler builds the library').toBe(0);
    copyFileSync(so, join(image.dir, 'ort', 'libonnxruntime.so.1'));
    const r = spawnSync(process.execPath, [image.entry], {
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      input: '',
      timeout: 30_000,
    });
    expect(existsSync(marker), 'the host library ran inside the enclave process').toBe(false);
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toMatch(/E_IMAGE_MISMATCH.*libonnxruntime/);
  }, 60_000);
});
