import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildJobRequest, jobCommitments, sealInput } from '@firn/client';
import { bytesToHex, type Hex, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { encodeOnnxModel } from '@firn/ml/formats';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

// Attack (malicious host): the enclave checks its image before every ML child is forked, because
// a child loads onnxruntime's native binding from the image on disk (docs/enclave-image.md). The
// spare child (decision 1280) is forked and checked when the enclave starts or after the previous
// job, but it loads onnxruntime only when an inference job reaches it, with no check in between
// (the warm-up runs TensorFlow.js only). A host that replaces ort/onnxruntime_binding.node after
// the spare was forked gets its native code run inside the child that holds the requester's
// decrypted model and inputs, under the unchanged measurement.
const root = mkdtempSync(join(tmpdir(), 'firn-attack-spare-ort-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const leak = join(root, 'leak.txt');
let sup: EnclaveSupervisor | undefined;
afterAll(async () => {
  await sup?.stop();
});

describe('attack: swap onnxruntime in the image while a spare ML child waits', () => {
  it('host code never runs in the child of a job, even one started before the swap', async () => {
    sup = new EnclaveSupervisor({
      bundlePath: image.entry,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      logger: createLogger({}, { write: () => undefined }),
      restart: false,
    });
    sup.start();
    await sup.ready();
    const identity = await sup.call<{ enclaveId: Hex; kemPublicKey: Hex; enclaveAddress: Hex }>('init', {});
    // The spare was forked (and the image checked) when the runtime was created; let it warm.
    await new Promise((r) => setTimeout(r, 5_000));

    // The host's "binding": a shared object whose constructor runs as soon as it is loaded.
    const c = join(root, 'evil.c');
    writeFileSync(
      c,
      `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
  FILE *f = fopen(${JSON.stringify(leak)}, "a");
  if (f) { fprintf(f, "host code ran in pid %d\\n", (int)getpid()); fclose(f); }
}
`,
    );
    const ort = join(image.dir, 'ort', 'onnxruntime_binding.node');
    renameSync(ort, join(root, 'real-binding.node'));
    execFileSync('cc', ['-shared', '-fPIC', '-o', ort, c]);

    const dir = mkdtempSync(join(root, 'job-'));
    const requester = generateSigningKey();
    const kem = await generateKemKeyPair();
    const domain = { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' as Hex };
    const model = encodeOnnxModel({
      name: 'g',
      nodes: [{ opType: 'Mul', inputs: ['x', 'k'], outputs: ['y'] }],
      initializers: [{ name: 'k', dims: [1], dtype: 'float', data: Float32Array.of(3) }],
      inputs: [{ name: 'x', elemType: 'float', shape: ['N'] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N'] }],
    });
    const input = JSON.stringify({ x: { dims: [2], type: 'float32', data: [1, 2] } });
    const m = await sealInput(model, 'application/onnx', kem.publicKey);
    const i = await sealInput(new TextEncoder().encode(input), 'application/json', kem.publicKey);
    for (const s of [m, i]) writeFileSync(join(dir, s.artifactId.slice(2)), s.sealed);
    const inputs = [
      { role: 'model', artifactId: m.artifactId, dataKey: m.dataKey },
      { role: 'input', artifactId: i.artifactId, dataKey: i.dataKey },
    ];
    const now = Math.floor(Date.now() / 1000);
    const jobId = bytesToHex(sha256(new TextEncoder().encode(`swap-${now}`)));
    const built = await buildJobRequest({
      jobId,
      kind: 'inference',
      inputs,
      params: {},
      requesterKey: bytesToHex(requester.privateKey),
      enclave: identity,
      resultRecipient: kem.publicKey,
      domain,
      grantExpiresAt: now + 600,
      grantIssuedAt: now - 60,
    });
    const outcome = await sup
      .call('runJob', {
        jobId,
        enc: built.body.enc,
        request: built.body.ciphertext,
        inputPaths: Object.fromEntries([m, i].map((s) => [s.artifactId, join(dir, s.artifactId.slice(2))])),
        onChain: jobCommitments('inference', {}, inputs),
        domain,
        outputDir: dir,
      })
      .then(
        () => 'ran',
        (e: { code?: string }) => e.code ?? 'error',
      );

    // The promise: code the requester did not attest never runs next to its plaintext. Either the
    // enclave refuses the changed image (the job fails, the escrow comes back) or it runs only the
    // measured code.
    const leaked = existsSync(leak) ? readFileSync(leak, 'utf8') : '';
    expect(leaked, `host code ran in the job's ML child (job outcome: ${outcome})`).toBe('');
    expect(outcome).toBe('E_IMAGE_MISMATCH');
  }, 120_000);
});
