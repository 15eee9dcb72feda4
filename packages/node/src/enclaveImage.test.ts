import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { bytesToHex, measurementDigest, sharedPath } from '@firn/core';
import { ENCLAVE_IMAGE_MANIFEST, type EnclaveImageManifest, hashFile } from '@firn/enclave';
import { childProcessRuntime } from '@firn/enclave/runtime';
import { encodeOnnxModel } from '@firn/ml/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage, readEnclaveImage, TFJS_LEFT_OUT } from './enclaveImage.ts';
import { EnclaveSupervisor } from './enclaveSupervisor.ts';
import { createLogger } from './logger.ts';

// The image is built once into a temp dir whose parent holds a planted node_modules: packages
// there throw on load, so anything the enclave resolved from the host's node_modules would fail.
const root = mkdtempSync(join(tmpdir(), 'firn-image-'));
for (const pkg of [
  'onnxruntime-node',
  '@tensorflow/tfjs-backend-wasm',
  'encoding',
  'node-fetch',
  ...TFJS_LEFT_OUT,
]) {
  const d = join(root, 'node_modules', pkg);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'package.json'), JSON.stringify({ name: pkg, version: '0.0.0', main: 'index.js' }));
  writeFileSync(join(d, 'index.js'), `throw new Error('host copy of ${pkg} loaded');`);
}
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const sups: EnclaveSupervisor[] = [];
let sealedKeys: unknown;

function supervise(entry: string): EnclaveSupervisor {
  const sup = new EnclaveSupervisor({
    bundlePath: entry,
    env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger: createLogger({}, { write: () => undefined }),
    restart: false,
  });
  sups.push(sup);
  sup.start();
  return sup;
}
afterAll(async () => {
  for (const s of sups) await s.stop();
  // Several copies of a ~55 MB image live under root: leave nothing behind in the temp folder.
  rmSync(root, { recursive: true, force: true });
});

/** A copy of the image to tamper with. */
function copyImage(name: string): string {
  const d = join(root, name);
  cpSync(image.dir, d, { recursive: true });
  return d;
}

/** Start the entry as the supervisor would and return its exit code and stderr (it exits on a bad image). */
function startEntry(dir: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(dir, 'app', 'enclave.mjs')], {
    env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    input: '',
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr.toString('utf8') };
}

describe('enclave image manifest', () => {
  it('lists the bundle, onnxruntime native files, the tfjs wasm files and the Node binary', () => {
    const paths = image.files.map((f) => f.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'app/enclave.mjs',
        'app/worker.mjs',
        'ort/onnxruntime_binding.node',
        'ort/libonnxruntime.so.1',
        'wasm/tfjs-backend-wasm.wasm',
        'wasm/tfjs-backend-wasm-simd.wasm',
      ]),
    );
    for (const f of image.files) expect(hashFile(join(image.dir, f.path)).sha256).toBe(f.sha256);
    expect(image.nodeVersion).toBe(process.version);
    expect(image.manifest.node.sha256).toBe(hashFile(process.execPath).sha256);
    expect(image.measurement).toEqual(measurementDigest('simulated', [image.digest]));
    // The framework's own build is the first-party image, and says so in its measured manifest.
    expect(image.manifest.app).toEqual({
      name: 'firn-ml',
      version: expect.any(String),
      workloads: ['inference', 'training'],
      firstParty: true,
    });
  });

  it('neither entry carries the TF.js packages no enclave uses, nor node-fetch (1811)', () => {
    for (const entry of ['enclave.mjs', 'worker.mjs']) {
      const code = readFileSync(join(image.dir, 'app', entry), 'utf8');
      // esbuild names each bundled module in a comment; the umbrella itself stays.
      expect(code, entry).toContain('node_modules/@tensorflow/tfjs/dist/');
      for (const pkg of [...TFJS_LEFT_OUT, 'node-fetch'])
        expect(code, `${entry}: ${pkg}`).not.toContain(`node_modules/${pkg}/`);
    }
  });

  it('the enclave entry carries no app code; only the worker entry does (1090)', () => {
    const enclave = readFileSync(join(image.dir, 'app', 'enclave.mjs'), 'utf8');
    const worker = readFileSync(join(image.dir, 'app', 'worker.mjs'), 'utf8');
    // esbuild names each bundled module in a comment: the first-party app's modules.
    expect(worker).toContain('packages/enclave/src/apps/firn-ml/index.ts');
    expect(enclave).not.toContain('packages/enclave/src/apps/');
    expect(enclave).not.toContain('--describe-app');
  });

  it('the enclave started from the image reports the image measurement', async () => {
    const sup = supervise(image.entry);
    await sup.ready();
    const hello = await sup.call<{ measurement: string }>('hello');
    expect(hello.measurement).toBe(bytesToHex(image.measurement));
    sealedKeys = (await sup.call<{ sealedKeys: unknown }>('init', {})).sealedKeys;
  }, 30_000);

  it('a second build of the same sources leaves a running image in place; a damaged one is replaced whole', async () => {
    // A second devnet or test run builds the image while enclaves run from it: the files they
    // check must not be rewritten under them.
    const entryIno = statSync(image.entry).ino;
    const running = supervise(image.entry);
    await running.call('hello');
    const again = await buildEnclaveImage(join(root, 'image'));
    expect(again.measurement).toEqual(image.measurement);
    expect(statSync(image.entry).ino).toBe(entryIno);
    expect(readdirSync(root).filter((n) => n.includes('.staging-') || n.includes('.old-'))).toEqual([]);
    await running.call('hello');
    // A damaged image in the target folder is not kept: the rebuild replaces it and verifies.
    const d = copyImage('damaged');
    appendFileSync(join(d, 'app', 'worker.mjs'), '\n');
    const rebuilt = await buildEnclaveImage(d);
    expect(rebuilt.measurement).toEqual(image.measurement);
    expect(readEnclaveImage(d, { skipNodeBinary: true }).digest).toEqual(image.digest);
  }, 90_000);

  it('replacing one ML runtime file stops the enclave (E_IMAGE_MISMATCH naming the file)', () => {
    const d = copyImage('swapped-ort');
    appendFileSync(join(d, 'ort', 'libonnxruntime.so.1'), Buffer.from([0]));
    expect(() => readEnclaveImage(d, { skipNodeBinary: true })).toThrow(
      expect.objectContaining({
        code: 'E_IMAGE_MISMATCH',
        message: expect.stringMatching(/ort\/libonnxruntime/),
      }),
    );
    const r = startEntry(d);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/E_IMAGE_MISMATCH/);
    expect(r.stderr).toMatch(/libonnxruntime/);
    // Positive control: the untouched copy passes the same check.
    expect(readEnclaveImage(copyImage('untouched'), { skipNodeBinary: true }).digest).toEqual(image.digest);
  }, 30_000);

  it('a host that also rewrites the manifest gets another measurement, and the old keys do not unseal', async () => {
    const d = copyImage('swapped-wasm');
    const wasm = join(d, 'wasm', 'tfjs-backend-wasm.wasm');
    const bytes = readFileSync(wasm);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(wasm, bytes);
    const m = JSON.parse(readFileSync(join(d, ENCLAVE_IMAGE_MANIFEST), 'utf8')) as EnclaveImageManifest;
    const f = m.files.find((x) => x.path === 'wasm/tfjs-backend-wasm.wasm')!;
    Object.assign(f, hashFile(wasm));
    writeFileSync(join(d, ENCLAVE_IMAGE_MANIFEST), JSON.stringify(m));
    const other = readEnclaveImage(d, { skipNodeBinary: true });
    expect(bytesToHex(other.measurement)).not.toBe(bytesToHex(image.measurement));
    const sup = supervise(join(d, 'app', 'enclave.mjs'));
    await sup.ready();
    expect((await sup.call<{ measurement: string }>('hello')).measurement).toBe(
      bytesToHex(other.measurement),
    );
    expect(sealedKeys).toBeDefined();
    await expect(sup.call('init', { sealedKeys })).rejects.toMatchObject({ code: 'E_SEAL' });
  }, 30_000);

  it('refuses to run with Node options that would load code from outside the image', () => {
    const preload = join(root, 'preload.cjs');
    writeFileSync(preload, "process.stderr.write('host code ran\\n');");
    for (const opts of [
      { args: ['--require', preload], env: {} },
      { args: [], env: { NODE_OPTIONS: `--require ${preload}` } },
    ]) {
      const r = spawnSync(process.execPath, [...opts.args, image.entry], {
        env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath, ...opts.env },
        input: '',
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr.toString()).toMatch(/E_IMAGE_MISMATCH.*Node options/);
    }
  }, 30_000);

  it('refuses an unlisted file planted in the image and a different Node binary', () => {
    const d = copyImage('planted');
    mkdirSync(join(d, 'node_modules', 'onnxruntime-node'), { recursive: true });
    writeFileSync(join(d, 'node_modules', 'onnxruntime-node', 'index.js'), 'module.exports = {};');
    expect(() => readEnclaveImage(d, { skipNodeBinary: true })).toThrow(
      expect.objectContaining({
        code: 'E_IMAGE_MISMATCH',
        message: expect.stringMatching(/not in its manifest/),
      }),
    );
    expect(startEntry(d).status).toBe(1);
    const n = copyImage('other-node');
    const m = JSON.parse(readFileSync(join(n, ENCLAVE_IMAGE_MANIFEST), 'utf8')) as EnclaveImageManifest;
    m.node.sha256 = `0x${'00'.repeat(32)}`;
    writeFileSync(join(n, ENCLAVE_IMAGE_MANIFEST), JSON.stringify(m));
    const r = startEntry(n);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Node binary/);
  }, 30_000);

  it("the image's ML runtime child runs onnxruntime and tfjs wasm from the image, not node_modules", async () => {
    const runtime = childProcessRuntime({ modulePath: join(image.dir, 'app', 'worker.mjs') });
    const model = await runtime.loadModel(
      encodeOnnxModel({
        name: 'g',
        nodes: [{ opType: 'Mul', inputs: ['x', 'k'], outputs: ['y'] }],
        initializers: [{ name: 'k', dims: [1], dtype: 'float', data: Float32Array.of(3) }],
        inputs: [{ name: 'x', elemType: 'float', shape: ['N'] }],
        outputs: [{ name: 'y', elemType: 'float', shape: ['N'] }],
      }),
    );
    const out = await model.run({ x: { type: 'float32', dims: [2], data: Float32Array.of(1, -2) } });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([3, -6]);
    await model.release();
    const csv = new Uint8Array(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')));
    const r = await runtime.runWorkload('training', {
      params: { task: 'classification', epochs: 1, hidden: [4] },
      inputs: [{ role: 'dataset', artifactId: `0x${'11'.repeat(32)}`, contentType: 'text/csv', bytes: csv }],
      progress: () => undefined,
      now: () => 1_750_000_000,
    });
    expect(r.report).toMatchObject({ backend: 'wasm' });
  }, 60_000);
});
