import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { bytesToHex, measurementDigest, repoRoot } from '@firn/core';
import {
  ENCLAVE_IMAGE_ENTRY,
  ENCLAVE_IMAGE_FORMAT,
  ENCLAVE_IMAGE_MANIFEST,
  ENCLAVE_IMAGE_ORT_DIR,
  ENCLAVE_IMAGE_WASM_DIR,
  type EnclaveImageFile,
  type EnclaveImageManifest,
  enclaveImageDigest,
  hashFile,
  verifyEnclaveImage,
} from '@firn/enclave';
import { build, type Plugin } from 'esbuild';

/** A built enclave image (docs/enclave-image.md). */
export interface EnclaveImage {
  /** The image root directory. */
  dir: string;
  /** Absolute path of the entry file Node runs (dir/app/enclave.mjs). */
  entry: string;
  manifest: EnclaveImageManifest;
  /** Every file with its SHA-256 (hex) and size, sorted by path: the Gramine trusted files. */
  files: EnclaveImageFile[];
  /** `process.version` of the Node that runs the image. */
  nodeVersion: string;
  /** 32 bytes: the image digest (tagged SHA-256 of the manifest). */
  digest: Uint8Array;
  /** 32 bytes: the simulated TEE's measurement, measurementDigest('simulated', [digest]). */
  measurement: Uint8Array;
}

export function defaultImageDir(): string {
  return join(repoRoot(), 'packages', 'enclave', 'dist', 'image');
}

const require = createRequire(import.meta.url);
const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** The ML runtime files copied into the image: [source absolute path, image-relative path]. */
function runtimeFiles(): [string, string][] {
  const ortRoot = dirname(dirname(require.resolve('onnxruntime-node')));
  const napi = join(ortRoot, 'bin', 'napi-v6', process.platform, process.arch);
  const ortFiles =
    process.platform === 'linux'
      ? ['onnxruntime_binding.node', 'libonnxruntime.so.1']
      : process.platform === 'darwin'
        ? ['onnxruntime_binding.node', 'libonnxruntime.1.dylib']
        : ['onnxruntime_binding.node', 'onnxruntime.dll'];
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  const wasm = [
    'tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-simd.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm',
  ];
  return [
    ...ortFiles.map((f): [string, string] => [join(napi, f), `${ENCLAVE_IMAGE_ORT_DIR}/${f}`]),
    ...wasm.map((f): [string, string] => [join(wasmDir, f), `${ENCLAVE_IMAGE_WASM_DIR}/${f}`]),
  ];
}

/**
 * onnxruntime-node loads its binding with require(`../bin/napi-v6/${platform}/${arch}/...`) from
 * node_modules; inside the image it must come from the image's own ort/ directory.
 */
const ortBindingFromImage: Plugin = {
  name: 'firn-ort-binding-from-image',
  setup(b) {
    b.onLoad({ filter: /onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      const re =
        /require\(`\.\.\/bin\/napi-v\d+\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node`\)/;
      if (!re.test(src)) throw new Error('onnxruntime-node binding loader changed; update the image builder');
      return {
        contents: src.replace(
          re,
          `require(__firnImageDir + '/${ENCLAVE_IMAGE_ORT_DIR}/onnxruntime_binding.node')`,
        ),
        loader: 'js',
      };
    });
  },
};

/**
 * Optional dependencies that bundled packages try to require inside try/catch (node-fetch's
 * `encoding`). Left external they would resolve from any node_modules above the image, so they
 * become a module that throws, which the callers already handle as "not installed".
 */
const OPTIONAL_ABSENT = ['encoding'];
const optionalAbsent: Plugin = {
  name: 'firn-optional-absent',
  setup(b) {
    const filter = new RegExp(`^(${OPTIONAL_ABSENT.join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'firn-absent' }));
    b.onLoad({ filter: /.*/, namespace: 'firn-absent' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the enclave image`)});`,
      loader: 'js',
    }));
  },
};

/**
 * Build the enclave image into `dir` (default packages/enclave/dist/image, replaced): bundle the
 * enclave program with its framework and the ML runtimes' JavaScript into app/enclave.mjs (no
 * package is left to resolve at run time: only Node built-ins stay external), copy the
 * onnxruntime native binding and library and the TensorFlow.js WebAssembly files, hash every file
 * and the Node binary, write manifest.json, then verify the result like the enclave does at
 * start. Deterministic for the same sources, dependencies and Node binary.
 * Throws if esbuild leaves an external package or a runtime file is missing.
 */
export async function buildEnclaveImage(dir = defaultImageDir()): Promise<EnclaveImage> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'app'), { recursive: true });
  const entry = join(dir, ...ENCLAVE_IMAGE_ENTRY.split('/'));
  const result = await build({
    entryPoints: [join(repoRoot(), 'packages', 'enclave', 'src', 'main.ts')],
    outfile: entry,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'error',
    metafile: true,
    plugins: [ortBindingFromImage, optionalAbsent],
    banner: {
      // CommonJS code in the bundle (emscripten's glue in tfjs-backend-wasm) expects require,
      // __filename and __dirname; ESM has none, so they are defined from the bundle's own URL.
      js: [
        "import { createRequire as __cr } from 'node:module';",
        "import { fileURLToPath as __f2p } from 'node:url';",
        "import { dirname as __dn } from 'node:path';",
        'const require = __cr(import.meta.url);',
        'const __filename = __f2p(import.meta.url);',
        'const __dirname = __dn(__filename);',
        'const __firnImageDir = __dn(__dirname);',
      ].join(' '),
    },
  });
  // Every import must be inside the bundle or a Node built-in: nothing resolves from node_modules.
  for (const out of Object.values(result.metafile.outputs))
    for (const imp of out.imports)
      if (imp.external && !BUILTINS.has(imp.path))
        throw new Error(`enclave bundle leaves ${imp.path} external; it would load from the host`);
  for (const [src, rel] of runtimeFiles()) {
    const to = join(dir, ...rel.split('/'));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(src, to);
  }
  const rels = [ENCLAVE_IMAGE_ENTRY, ...runtimeFiles().map(([, r]) => r)].sort();
  const files = rels.map((path): EnclaveImageFile => ({ path, ...hashFile(join(dir, ...path.split('/'))) }));
  const node = hashFile(process.execPath);
  const manifest: EnclaveImageManifest = {
    format: ENCLAVE_IMAGE_FORMAT,
    entry: ENCLAVE_IMAGE_ENTRY,
    node: { version: process.version, platform: process.platform, arch: process.arch, ...node },
    files,
  };
  writeFileSync(join(dir, ENCLAVE_IMAGE_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return readEnclaveImage(dir, { skipNodeBinary: true });
}

/**
 * Read and verify an image directory (every file against the manifest, as the enclave does at
 * start). Throws E_IMAGE_MISMATCH naming the first file that differs.
 */
export function readEnclaveImage(
  dir = defaultImageDir(),
  opts: { skipNodeBinary?: boolean } = {},
): EnclaveImage {
  const v = verifyEnclaveImage(dir, opts.skipNodeBinary ? { skipNodeBinary: true } : {});
  return {
    dir,
    entry: join(dir, ...v.manifest.entry.split('/')),
    manifest: v.manifest,
    files: v.manifest.files,
    nodeVersion: v.manifest.node.version,
    digest: v.digest,
    measurement: measurementDigest('simulated', [v.digest]),
  };
}

/** The image's simulated measurement as hex (what the registry allow-lists). */
export function enclaveImageMeasurement(image: Pick<EnclaveImage, 'manifest'>): `0x${string}` {
  return bytesToHex(measurementDigest('simulated', [enclaveImageDigest(image.manifest)]));
}
