import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { builtinModules, createRequire } from 'node:module';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { APP_FORMAT, type AppDescription } from '@firn/app';
import {
  assertRole,
  bytesToHex,
  FirnError,
  type Hex,
  hexBytes,
  measurementDigest,
  repoRoot,
} from '@firn/core';
import {
  ENCLAVE_IMAGE_ENTRY,
  ENCLAVE_IMAGE_FORMAT,
  ENCLAVE_IMAGE_MANIFEST,
  ENCLAVE_IMAGE_ORT_DIR,
  ENCLAVE_IMAGE_WASM_DIR,
  ENCLAVE_IMAGE_WORKER,
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
/** A module that throws, when required, that `path` is not part of the enclave image. */
const absentModule = (path: string) => ({
  contents: `throw new Error(${JSON.stringify(`${path} is not part of the enclave image`)});`,
  loader: 'js' as const,
});
const optionalAbsent: Plugin = {
  name: 'firn-optional-absent',
  setup(b) {
    const filter = new RegExp(`^(${OPTIONAL_ABSENT.join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'firn-absent' }));
    b.onLoad({ filter: /.*/, namespace: 'firn-absent' }, (args) => absentModule(args.path));
  },
};

/**
 * Packages the `@tensorflow/tfjs` umbrella requires that nothing of firn's uses in an enclave: the
 * WebGL backend (no GPU context in Node), the graph-model converter (firn loads no TF.js graph
 * models) and tf.data. Each becomes an empty module in firn's own image (the enclave entry, and
 * the worker entry when no app is built in: an app may use them), so about 1.6 MB of code that
 * never runs is neither in the measured image nor compiled at each child's start (decision 1811).
 * tfjs-core's `node-fetch`, required only where Node has no `fetch` of its own (Node 18 and later
 * have one), becomes a module that throws "not part of the enclave image".
 */
export const TFJS_LEFT_OUT = [
  '@tensorflow/tfjs-backend-webgl',
  '@tensorflow/tfjs-converter',
  '@tensorflow/tfjs-data',
] as const;
const escapeRe = (p: string) => p.replace(/[/.-]/g, '\\$&');
const tfjsLeftOut: Plugin = {
  name: 'firn-tfjs-left-out',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${TFJS_LEFT_OUT.map(escapeRe).join('|')})$`) }, (args) => ({
      path: args.path,
      namespace: 'firn-left-out',
    }));
    b.onLoad({ filter: /.*/, namespace: 'firn-left-out' }, () => ({
      contents: 'module.exports = {};',
      loader: 'js',
    }));
    b.onResolve({ filter: /^node-fetch$/ }, (args) => ({ path: args.path, namespace: 'firn-no-fetch' }));
    b.onLoad({ filter: /.*/, namespace: 'firn-no-fetch' }, (args) => absentModule(args.path));
  },
};

/** The enclave entry's module: the framework that holds the keys, never an app. */
export const ENCLAVE_MAIN_MODULE = 'packages/enclave/src/main.ts';
/** The worker entry's module: the keyless runtime child, which carries the app. */
export const ENCLAVE_WORKER_MODULE = 'packages/enclave/src/runtime/workerMain.ts';
/** The module of the enclave program that names the app an image serves (replaced for app builds). */
export const IMAGE_APP_MODULE = 'packages/enclave/src/apps/imageApp.ts';
const APP_NS = 'firn-app';
const LOADERS: Record<string, 'ts' | 'tsx' | 'js' | 'jsx' | 'json'> = {
  '.ts': 'ts',
  '.mts': 'ts',
  '.cts': 'ts',
  '.tsx': 'tsx',
  '.js': 'js',
  '.mjs': 'js',
  '.cjs': 'js',
  '.jsx': 'jsx',
  '.json': 'json',
};
const toPosix = (p: string) => p.split(sep).join('/');

/** Resolve a relative import like TypeScript's bundler resolution: exact, .js→.ts, extensions, index. */
function resolveFile(base: string): string | undefined {
  const candidates = [base];
  if (/\.(m|c)?js$/.test(base)) candidates.push(base.replace(/\.(m|c)?js$/, (m) => m.replace('js', 'ts')));
  for (const ext of ['.ts', '.tsx', '.mts', '.js', '.mjs', '.json']) candidates.push(`${base}${ext}`);
  for (const ext of ['index.ts', 'index.tsx', 'index.js', 'index.mjs']) candidates.push(join(base, ext));
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/**
 * esbuild plugin: serve an app folder's own files from a virtual namespace whose paths are relative to the app
 * folder (`firn-app:src/index.ts`), so nothing in the bundle depends on where the folder is on
 * disk; `@firn/app` resolves to this installation's SDK whatever the app folder has installed.
 * Relative imports that leave the app folder resolve normally (their path is then relative to
 * the installation). Bare imports resolve from the app folder, then the installation's node_modules.
 * With `entry`, the image's app module (IMAGE_APP_MODULE) becomes that app; `firn-app:PATH`
 * names a file of the app folder.
 */
export function appSourcePlugin(appDir: string, entry?: string): Plugin {
  const sdk = join(repoRoot(), 'packages', 'app', 'src');
  const imageAppModule = join(repoRoot(), ...IMAGE_APP_MODULE.split('/'));
  return {
    name: 'firn-app-source',
    setup(b) {
      b.onLoad({ filter: /imageApp\.ts$/ }, (args) => {
        if (entry === undefined || resolve(args.path) !== imageAppModule) return undefined;
        return {
          contents: [
            `import app from ${JSON.stringify(`${APP_NS}:${entry}`)};`,
            `import { isFirnApp } from '@firn/app';`,
            `if (!isFirnApp(app)) throw new Error('the app entry ${entry} must export default defineApp({...})');`,
            'export default app;',
          ].join('\n'),
          loader: 'ts',
          resolveDir: dirname(imageAppModule),
        };
      });
      b.onResolve({ filter: /^@firn\/app(\/(testing|signData))?$/ }, (args) => {
        const sub = args.path.split('/')[2];
        return { path: join(sdk, `${sub ?? 'index'}.ts`) };
      });
      b.onResolve({ filter: new RegExp(`^${APP_NS}:`) }, (args) => ({
        path: args.path.slice(APP_NS.length + 1),
        namespace: APP_NS,
      }));
      b.onResolve({ filter: /^\.\.?(\/|$)/, namespace: APP_NS }, (args) => {
        const abs = resolveFile(join(appDir, dirname(args.importer), args.path));
        if (abs === undefined)
          return {
            errors: [{ text: `cannot resolve ${args.path} from ${args.importer} in the app folder` }],
          };
        const rel = relative(appDir, abs);
        if (rel.startsWith('..') || isAbsolute(rel)) return { path: abs };
        return { path: toPosix(rel), namespace: APP_NS };
      });
      b.onLoad({ filter: /.*/, namespace: APP_NS }, (args) => {
        const abs = join(appDir, ...args.path.split('/'));
        const loader = LOADERS[extname(abs)];
        if (loader === undefined)
          return { errors: [{ text: `the app imports ${args.path}, which is not code` }] };
        return { contents: readFileSync(abs), loader, resolveDir: dirname(abs) };
      });
    },
  };
}

/** What to build into an image besides the framework. */
export interface BuildEnclaveImageOptions {
  /**
   * Serve this app instead of the first-party `firn-ml`: `dir` is the app folder (absolute),
   * `entry` its module exporting `defineApp(...)` as default, relative to `dir` ('/'-separated).
   */
  app?: { dir: string; entry: string };
  /**
   * Pin this key broker identity address (0x + 40 hex) in the manifest: the enclave then takes its
   * sealing key from that broker only, and the pin is part of the measurement (decision 1710).
   */
  keyBroker?: Hex;
}

/**
 * Build the enclave image into `dir` (default packages/enclave/dist/image): the image is built in a
 * sibling staging folder and only then put in place. When `dir` already holds a valid image with
 * the same manifest (the build is deterministic, so the same sources and Node binary), it is left
 * untouched, so enclaves already running from it keep passing their image checks while a second
 * devnet or test run builds; a different image replaces it by two renames, never file by file.
 * Otherwise as {@link buildImageInto}. Throws what it throws, and on a failed build leaves `dir`
 * as it was.
 */
export async function buildEnclaveImage(
  dir = defaultImageDir(),
  opts: BuildEnclaveImageOptions = {},
): Promise<EnclaveImage> {
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = `${dir}.staging-${tag}`;
  try {
    await buildImageInto(staging, opts);
    const fresh = readFileSync(join(staging, ENCLAVE_IMAGE_MANIFEST));
    if (!sameValidImage(dir, fresh)) {
      const old = `${dir}.old-${tag}`;
      try {
        renameSync(dir, old);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      try {
        renameSync(staging, dir);
      } catch (e) {
        // Another build put its image in place between the two renames: keep it if it is ours.
        if (!sameValidImage(dir, fresh)) throw e;
      }
      rmSync(old, { recursive: true, force: true });
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return readEnclaveImage(dir, { skipNodeBinary: true });
}

/** Whether `dir` holds an image whose manifest is byte-equal to `manifest` and whose files verify. */
function sameValidImage(dir: string, manifest: Buffer): boolean {
  try {
    if (!readFileSync(join(dir, ENCLAVE_IMAGE_MANIFEST)).equals(manifest)) return false;
    readEnclaveImage(dir, { skipNodeBinary: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * Build the enclave image into `dir` (emptied first): bundle the
 * enclave program with its framework and the ML runtimes' JavaScript into app/enclave.mjs (no
 * package is left to resolve at run time: only Node built-ins stay external), copy the
 * onnxruntime native binding and library and the TensorFlow.js WebAssembly files, hash every file
 * and the Node binary, write manifest.json, then verify the result like the enclave does at
 * start. Deterministic for the same sources, dependencies and Node binary.
 * Throws if esbuild leaves an external package or a runtime file is missing.
 */
async function buildImageInto(dir: string, opts: BuildEnclaveImageOptions): Promise<EnclaveImage> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'app'), { recursive: true });
  const entry = join(dir, ...ENCLAVE_IMAGE_ENTRY.split('/'));
  const worker = join(dir, ...ENCLAVE_IMAGE_WORKER.split('/'));
  const root = repoRoot();
  const common = {
    // Paths in the bundle (esbuild's module comments and CommonJS keys) are relative to the
    // installation, and the app's own files live in a location-free namespace: the same sources
    // give the same bytes wherever the installation and the app folder are.
    absWorkingDir: root,
    nodePaths: [join(root, 'node_modules')],
    bundle: true,
    platform: 'node' as const,
    format: 'esm' as const,
    target: 'node20',
    legalComments: 'none' as const,
    logLevel: 'error' as const,
    metafile: true as const,
    charset: 'utf8' as const,
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
  };
  // Two entries (docs/decisions/1090): the enclave entry (keys, channel, proofs, signing) is the
  // framework alone, and the worker entry (the keyless runtime child) carries the app. The app's
  // module-level code therefore never runs in the process that makes and holds the keys.
  const enclaveBuild = await build({
    ...common,
    entryPoints: [ENCLAVE_MAIN_MODULE],
    outfile: entry,
    plugins: [ortBindingFromImage, optionalAbsent, tfjsLeftOut],
  });
  for (const input of Object.keys(enclaveBuild.metafile.inputs))
    if (input.startsWith(`${APP_NS}:`) || input.includes('packages/enclave/src/apps/'))
      throw new Error(`the enclave entry imports app code (${input}); apps belong in the worker entry only`);
  const workerBuild = await build({
    ...common,
    entryPoints: [ENCLAVE_WORKER_MODULE],
    outfile: worker,
    plugins: [
      ortBindingFromImage,
      optionalAbsent,
      ...(opts.app ? [appSourcePlugin(resolve(opts.app.dir), opts.app.entry)] : [tfjsLeftOut]),
    ],
  });
  const result = {
    metafile: { outputs: { ...enclaveBuild.metafile.outputs, ...workerBuild.metafile.outputs } },
  };
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
  const rels = [ENCLAVE_IMAGE_ENTRY, ENCLAVE_IMAGE_WORKER, ...runtimeFiles().map(([, r]) => r)].sort();
  const files = rels.map((path): EnclaveImageFile => ({ path, ...hashFile(join(dir, ...path.split('/'))) }));
  const node = hashFile(process.execPath);
  // The app's description comes from the worker entry (a child with no environment), and goes
  // into the manifest, so the measurement covers the workload names and the first-party flag.
  const described = describeWorkerEntry(worker);
  const manifest: EnclaveImageManifest = {
    format: ENCLAVE_IMAGE_FORMAT,
    entry: ENCLAVE_IMAGE_ENTRY,
    node: { version: process.version, platform: process.platform, arch: process.arch, ...node },
    files,
    app: {
      name: described.name,
      version: described.version,
      workloads: [...described.workloads].sort(),
      // Only the framework's own build (no --app) is the first-party image.
      firstParty: opts.app === undefined,
    },
    ...(opts.keyBroker === undefined
      ? {}
      : { keyBroker: { address: bytesToHex(hexBytes(opts.keyBroker, 'key broker address', 20)) } }),
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

/** Where an app folder's entry is looked for, in this order. */
export const APP_ENTRY_CANDIDATES = [
  'src/index.ts',
  'src/index.js',
  'src/index.mjs',
  'index.ts',
  'index.js',
  'index.mjs',
];

export interface BuildAppImageOptions {
  /** The app folder (anywhere on disk). */
  appDir: string;
  /** The image directory to write (replaced); default APP_DIR/dist/firn-image. */
  outDir?: string;
  /** The entry module relative to appDir; default the first of APP_ENTRY_CANDIDATES that exists. */
  entry?: string;
  /** Pin this key broker identity address in the measured manifest (decision 1710). */
  keyBroker?: Hex;
}

export interface AppImage {
  image: EnclaveImage;
  /** The simulated measurement (hex): what governance allow-lists and the node registers. */
  measurement: Hex;
  /** The image digest (hex, the manifest's tagged hash). */
  imageDigest: Hex;
  app: AppDescription;
}

/**
 * `firn app build`: bundle the app in `appDir` with the enclave framework into an enclave image
 * (docs/decisions/1080-app-model.md, 1081-reproducible-app-build.md), then ask the built entry
 * which app it serves (`describeEnclaveImage`). Errors: E_NOT_FOUND (no app entry),
 * E_CONFLICT (outDir exists and is not an image, so it is not deleted), E_INVALID_INPUT (the
 * entry does not export an app), esbuild's errors for code that does not build.
 */
export async function buildAppImage(opts: BuildAppImageOptions): Promise<AppImage> {
  const appDir = resolve(opts.appDir);
  if (!existsSync(appDir) || !statSync(appDir).isDirectory())
    throw new FirnError('E_NOT_FOUND', `app folder ${appDir} does not exist`);
  const entry = opts.entry ?? APP_ENTRY_CANDIDATES.find((c) => existsSync(join(appDir, ...c.split('/'))));
  if (entry === undefined || !existsSync(join(appDir, ...entry.split('/'))))
    throw new FirnError(
      'E_NOT_FOUND',
      `no app entry in ${appDir}: create ${APP_ENTRY_CANDIDATES[0]} exporting default defineApp({...})`,
    );
  const outDir = resolve(opts.outDir ?? join(appDir, 'dist', 'firn-image'));
  if (
    existsSync(outDir) &&
    readdirSync(outDir).length > 0 &&
    !existsSync(join(outDir, ENCLAVE_IMAGE_MANIFEST))
  )
    throw new FirnError('E_CONFLICT', `${outDir} exists and is not an enclave image; pick another --out`);
  let image: EnclaveImage;
  try {
    image = await buildEnclaveImage(outDir, {
      app: { dir: appDir, entry: toPosix(entry) },
      ...(opts.keyBroker === undefined ? {} : { keyBroker: opts.keyBroker }),
    });
  } catch (e) {
    rmSync(outDir, { recursive: true, force: true });
    const errors = (e as { errors?: { text?: string; location?: { file?: string; line?: number } | null }[] })
      .errors;
    if (!Array.isArray(errors) || errors.length === 0) throw e;
    const first = errors[0]!;
    const at = first.location?.file ? ` (${first.location.file}:${first.location.line})` : '';
    throw new FirnError('E_INVALID_INPUT', `the app does not build: ${first.text}${at}`, { cause: e });
  }
  let app: AppDescription;
  try {
    app = describeEnclaveImage(outDir);
  } catch (e) {
    // An image whose app does not load is never left behind to be hosted.
    rmSync(outDir, { recursive: true, force: true });
    throw e;
  }
  return {
    image,
    measurement: bytesToHex(image.measurement),
    imageDigest: bytesToHex(image.digest),
    app,
  };
}

/**
 * The app a built image serves, from its verified manifest (written at build time from the
 * worker entry, covered by the measurement): `{format, name, version, workloads}`. Throws
 * E_IMAGE_MISMATCH when the image does not verify or its manifest names no app.
 */
export function describeEnclaveImage(dir: string): AppDescription {
  const app = verifyEnclaveImage(dir, { skipNodeBinary: true }).manifest.app;
  if (app === undefined)
    throw new FirnError('E_IMAGE_MISMATCH', 'the image manifest names no app; rebuild the image');
  return { format: APP_FORMAT, name: app.name, version: app.version, workloads: [...app.workloads] };
}

/**
 * Ask a built worker entry which app it carries: runs `node WORKER --describe-app` with an empty
 * environment (no platform, no keys) and checks the answer. Throws E_INVALID_INPUT when the app's
 * module throws on load (its error line quoted), E_IMAGE_MISMATCH when the entry answers with
 * something that is not an app description.
 */
export function describeWorkerEntry(workerPath: string): AppDescription {
  let out: string;
  try {
    out = execFileSync(process.execPath, [workerPath, '--describe-app'], {
      env: {},
      encoding: 'utf8',
      timeout: 60_000,
      maxBuffer: 64 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    // The app's module threw while loading: report its error line, not the bundle's stack.
    const stderr = String((e as { stderr?: unknown }).stderr ?? '');
    const line = /^(?:\w*Error|FirnError)(?: \[\w+\])?: (.+)$/m.exec(stderr)?.[1];
    throw new FirnError(
      'E_INVALID_INPUT',
      `the app failed to load in its image: ${(line ?? stderr.trim().split('\n').pop() ?? 'no output').slice(0, 300)}`,
    );
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(out.trim()) as Record<string, unknown>;
  } catch {
    throw new FirnError('E_IMAGE_MISMATCH', 'the worker entry answered --describe-app with no JSON');
  }
  if (
    o.format !== APP_FORMAT ||
    typeof o.name !== 'string' ||
    typeof o.version !== 'string' ||
    !Array.isArray(o.workloads)
  )
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      'the worker entry answered --describe-app with no app description',
    );
  return {
    format: APP_FORMAT,
    name: assertRole(o.name, 'app name'),
    version: o.version.slice(0, 32),
    workloads: o.workloads.map((w) => assertRole(w, 'workload name')),
  };
}

/** The image's simulated measurement as hex (what the registry allow-lists). */
export function enclaveImageMeasurement(image: Pick<EnclaveImage, 'manifest'>): `0x${string}` {
  return bytesToHex(measurementDigest('simulated', [enclaveImageDigest(image.manifest)]));
}
