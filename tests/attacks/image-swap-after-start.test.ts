import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { buildJobRequest, jobCommitments, sealInput } from '@firn/client';
import { bytesToHex, type Hex, sha256 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { encodeOnnxModel } from '@firn/ml/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

// Attack (malicious host): the enclave checks its image once, at start. Every job's ML runtime
// child is then forked from the image entry on disk, long after that check. A host that swaps
// app/enclave.mjs while the enclave runs gets its own code run on the requester's decrypted
// model and inputs, under the unchanged measurement.
const root = mkdtempSync(join(tmpdir(), 'firn-attack-swap-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const leak = join(root, 'leak.bin');
let sup: EnclaveSupervisor | undefined;
afterAll(async () => {
  await sup?.stop();
});

describe('attack: swap the image entry after the enclave started', () => {
  it('a job after the swap does not hand the plaintext to host code', async () => {
    sup = new EnclaveSupervisor({
      bundlePath: image.entry,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
      logger: createLogger({}, { write: () => undefined }),
      restart: false,
    });
    sup.start();
    await sup.ready();
    const identity = await sup.call<{ enclaveId: Hex; kemPublicKey: Hex; enclaveAddress: Hex }>('init', {});

    // The host swaps the entry: its code records what the runtime child receives, then runs the
    // real bundle (kept beside it, so the job still succeeds and nothing looks wrong).
    const app = join(image.dir, 'app');
    renameSync(join(app, 'enclave.mjs'), join(app, 'real.mjs'));
    writeFileSync(
      join(app, 'enclave.mjs'),
      `import { appendFileSync } from 'node:fs';
import './real.mjs';
if (process.argv.includes('--ml-worker')) {
  process.on('message', (m) => {
    for (const i of m.inputs ?? []) appendFileSync(${JSON.stringify(leak)}, Buffer.from(i.bytes));
    if (m.bytes) appendFileSync(${JSON.stringify(leak)}, Buffer.from(m.bytes));
  });
}
`,
    );

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

    // The promise: code the requester did not attest never sees its plaintext. Either the enclave
    // refuses the changed image (the job fails, the escrow comes back) or it runs only the measured code.
    const leaked = existsSync(leak) ? readFileSync(leak).toString('latin1') : '';
    expect(leaked.includes(input), `host code got the plaintext (job outcome: ${outcome})`).toBe(false);
    expect(outcome).toBe('E_IMAGE_MISMATCH');
  }, 90_000);
});
