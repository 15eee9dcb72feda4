import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildJobRequest, jobCommitments, openOutput, sealInput } from '@firn/client';
import { bytesToHex, type Hex, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { encodeOnnxModel } from '@firn/ml/formats';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

// Attack (malicious host): a child loads onnxruntime's native binding and TensorFlow.js's
// WebAssembly from the image on disk (docs/enclave-image.md). The spare child (decision 1280) is
// started ahead of its job; if it loaded an engine only when a job reached it, a host that replaces
// ort/onnxruntime_binding.node (or a wasm file) while it waits would get its native code run inside
// the child that holds the requester's decrypted model and inputs, under the unchanged
// measurement. Decision 1330: the spare loads every engine first, then the image is checked; a
// job never reaches a spare before that check, and every child started later is checked too.
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
    // The spare was forked when the runtime was created; let it load its engines and be checked.
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
    // TensorFlow.js's WebAssembly too: a module that does not compile (a backend that loaded it
    // now would fail or fall back to the pure-JS one).
    for (const f of readdirSync(join(image.dir, 'wasm')))
      writeFileSync(join(image.dir, 'wasm', f), new Uint8Array([0, 0x61, 0x73, 0x6d, 9, 9, 9, 9]));

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
    const runJob = (jobId: Hex, built: Awaited<ReturnType<typeof buildJobRequest>>) =>
      sup!.call<{ outputs: { role: string; path: string }[] }>('runJob', {
        jobId,
        enc: built.body.enc,
        request: built.body.ciphertext,
        inputPaths: Object.fromEntries([m, i].map((s) => [s.artifactId, join(dir, s.artifactId.slice(2))])),
        onChain: jobCommitments('inference', {}, inputs),
        domain,
        outputDir: dir,
      });
    const outcome = await runJob(jobId, built).then(
      async (r) => {
        // Run, then only by the measured code: the output is the model's (y = 3x).
        const o = r.outputs.find((x) => x.role === 'output')!;
        const y = JSON.parse(
          new TextDecoder().decode(
            (await openOutput(new Uint8Array(readFileSync(o.path)), kem.privateKey)).bytes,
          ),
        ) as { y: { data: number[] } };
        return `ran ${JSON.stringify(y.y.data)}`;
      },
      (e: { code?: string }) => e.code ?? 'error',
    );

    // The promise: code the requester did not attest never runs next to its plaintext. Either the
    // enclave refuses the changed image (the job fails, the escrow comes back) or it runs only the
    // measured code: the spare had loaded every engine, and been checked, before the swap.
    const leaked = () => (existsSync(leak) ? readFileSync(leak, 'utf8') : '');
    expect(leaked(), `host code ran in the job's ML child (job outcome: ${outcome})`).toBe('');
    expect(['ran [3,6]', 'E_IMAGE_MISMATCH']).toContain(outcome);

    // Every child started after the swap is refused: the next job fails typed, and still no host
    // code ran (the next spare is checked after it loads, and dropped; the job's own child is
    // checked before its fork).
    const jobId2 = bytesToHex(sha256(new TextEncoder().encode(`swap2-${now}`)));
    const built2 = await buildJobRequest({
      jobId: jobId2,
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
    const second = await runJob(jobId2, built2).then(
      () => 'ran',
      (e: { code?: string }) => e.code ?? 'error',
    );
    expect(second).toBe('E_IMAGE_MISMATCH');
    expect(leaked()).toBe('');
  }, 120_000);
});
