import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { FirnError, InvalidInputError } from '@firn/core';
import { ENCLAVE_IMAGE_MANIFEST, type EnclaveImageManifest } from '@firn/enclave';
import type { EnclaveEnvName, EnclaveLauncher } from './enclaveSupervisor.ts';

/**
 * Inside the enclave everything firn-specific lives under /firn, mounted from paths relative to
 * the launch directory, so MRENCLAVE depends on the image, the Node binary, Gramine and the system
 * libraries, not on where an operator keeps them.
 */
export const GRAMINE_IMAGE_MOUNT = '/firn/image';
export const GRAMINE_NODE_MOUNT = '/firn/node';
/** The enclave's data directory: a Gramine encrypted mount keyed by the MRENCLAVE sealing key. */
export const GRAMINE_DATA_MOUNT = '/firn/data';
/** Name of the manifest in the launch directory (`<name>.manifest`, `.manifest.sgx`, `.sig`). */
export const GRAMINE_MANIFEST_NAME = 'firn-enclave';
/**
 * Enclave variables the host may still set at launch (Gramine `passthrough`): only the log
 * level. FIRN_TEE is fixed in the manifest; no variable relocates /dev/attestation (the enclave
 * reads none, decision 1712); the simulated TEE's variables do not apply.
 */
export const GRAMINE_PASSTHROUGH_ALLOWED: readonly EnclaveEnvName[] = ['FIRN_LOG_LEVEL'];

export interface GramineManifestOptions {
  /** The enclave image: its directory and parsed manifest (docs/enclave-image.md). */
  image: { dir: string; manifest: EnclaveImageManifest };
  /** Gramine's libsysdb.so (gramine.libos). */
  gramineLibos?: string;
  /** Gramine's patched glibc directory (gramine.runtimedir()). */
  gramineRuntimeDir?: string;
  /** System library directories Node links against (libstdc++, libgcc_s, libm, ...). */
  libDirs?: string[];
  /** Variables passed through from the host at launch; a subset of GRAMINE_PASSTHROUGH_ALLOWED. */
  passthroughEnv?: EnclaveEnvName[];
  /** SGX enclave size (Gramine size string, default "8G") and thread count (default 64). */
  enclaveSize?: string;
  maxThreads?: number;
  /** ISVPRODID and ISVSVN written into SIGSTRUCT (default 1, 1). */
  isvProdId?: number;
  isvSvn?: number;
}

/** A generated manifest and the trusted files it pins by hash (image files, manifest.json, Node). */
export interface GramineManifest {
  text: string;
  /** URI (relative to the launch directory) -> SHA-256 hex without 0x. */
  pinned: Map<string, string>;
}

const DEFAULT_LIBOS = '/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so';
const DEFAULT_RUNTIME = '/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc';
const DEFAULT_LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'];

/** A TOML basic string. */
function q(s: string): string {
  if (/[\u0000-\u001f\u007f]/.test(s))
    throw new InvalidInputError('manifest strings must not contain control characters');
  return JSON.stringify(s);
}

function absDir(p: string, what: string): string {
  if (!p.startsWith('/') || p.includes('..') || p.includes('"'))
    throw new InvalidInputError(`${what} must be an absolute path without '..'`);
  return p.replace(/\/+$/, '');
}

const hex = (h: string) => h.replace(/^0x/, '').toLowerCase();

/**
 * Generate the Gramine manifest (TOML) that runs the enclave image on SGX: Node as
 * libos.entrypoint with the image's entry as argv, FIRN_TEE fixed to sgx-gramine,
 * sgx.remote_attestation = "dcap", the data directory as an encrypted mount keyed by
 * _sgx_mrenclave, every image file (and manifest.json, and the Node binary) a trusted file with
 * its SHA-256, Gramine's runtime and the system library directories trusted (hashed by
 * gramine-sgx-sign), and no allowed_files: the enclave can open no host file unmeasured.
 * Follows Gramine's manifest syntax (Documentation/manifest-syntax.rst, 1.x). Throws
 * E_INVALID_INPUT on paths or options it cannot express safely.
 */
export function generateGramineManifest(o: GramineManifestOptions): GramineManifest {
  const m = o.image.manifest;
  const libos = absDir(o.gramineLibos ?? DEFAULT_LIBOS, 'gramineLibos');
  const runtime = absDir(o.gramineRuntimeDir ?? DEFAULT_RUNTIME, 'gramineRuntimeDir');
  const libDirs = (o.libDirs ?? DEFAULT_LIB_DIRS).map((d) => absDir(d, 'libDirs'));
  for (const k of o.passthroughEnv ?? [])
    if (!GRAMINE_PASSTHROUGH_ALLOWED.includes(k))
      throw new InvalidInputError(`${k} may not pass from the host into a Gramine enclave`);
  const size = o.enclaveSize ?? '8G';
  if (!/^[0-9]+[KMG]$/.test(size)) throw new InvalidInputError('enclaveSize must look like 8G');
  const threads = o.maxThreads ?? 64;
  if (!Number.isInteger(threads) || threads < 4 || threads > 4096)
    throw new InvalidInputError('maxThreads must be 4..4096');

  const pinned = new Map<string, string>();
  pinned.set('file:node', hex(m.node.sha256));
  const manifestJson = readFileSync(join(o.image.dir, ENCLAVE_IMAGE_MANIFEST));
  pinned.set(`file:image/${ENCLAVE_IMAGE_MANIFEST}`, createHash('sha256').update(manifestJson).digest('hex'));
  for (const f of m.files) pinned.set(`file:image/${f.path}`, hex(f.sha256));

  const L: string[] = [];
  L.push(
    '# Generated by firn (packages/node/src/gramineManifest.ts) from the enclave image manifest.',
    `# Image entry ${m.entry}, Node ${m.node.version}. Do not edit: regenerate and re-sign.`,
    '',
    `loader.entrypoint = ${q(`file:${libos}`)}`,
    `libos.entrypoint = ${q(GRAMINE_NODE_MOUNT)}`,
    `loader.argv = [${q('node')}, ${q(`${GRAMINE_IMAGE_MOUNT}/${m.entry}`)}]`,
    'loader.log_level = "error"',
    '',
    `loader.env.LD_LIBRARY_PATH = ${q(['/lib', ...libDirs].join(':'))}`,
    'loader.env.FIRN_TEE = "sgx-gramine"',
    `loader.env.FIRN_DATA_DIR = ${q(GRAMINE_DATA_MOUNT)}`,
  );
  for (const k of o.passthroughEnv ?? []) L.push(`loader.env.${k} = { passthrough = true }`);
  L.push(
    '',
    '# Node (libuv) needs eventfd; Gramine emulates it inside the enclave.',
    'sys.insecure__allow_eventfd = true',
    '',
    'fs.mounts = [',
    `  { path = "/lib", uri = ${q(`file:${runtime}`)} },`,
    ...libDirs.map((d) => `  { path = ${q(d)}, uri = ${q(`file:${d}`)} },`),
    `  { path = ${q(GRAMINE_NODE_MOUNT)}, uri = "file:node" },`,
    `  { path = ${q(GRAMINE_IMAGE_MOUNT)}, uri = "file:image" },`,
    '  # Written by the enclave only, encrypted and integrity-protected with the MRENCLAVE sealing key.',
    `  { type = "encrypted", path = ${q(GRAMINE_DATA_MOUNT)}, uri = "file:data", key_name = "_sgx_mrenclave" },`,
    '  { type = "tmpfs", path = "/tmp" },',
    ']',
    '',
    'sgx.debug = false',
    'sgx.edmm_enable = false',
    `sgx.enclave_size = ${q(size)}`,
    `sgx.max_threads = ${threads}`,
    'sgx.remote_attestation = "dcap"',
    `sgx.isvprodid = ${o.isvProdId ?? 1}`,
    `sgx.isvsvn = ${o.isvSvn ?? 1}`,
    '',
    '# Everything the enclave loads is measured into MRENCLAVE. Image files and Node are pinned by',
    '# hash from the image manifest; Gramine and system libraries are hashed by gramine-sgx-sign.',
    'sgx.trusted_files = [',
    `  ${q(`file:${libos}`)},`,
    `  ${q(`file:${runtime}/`)},`,
    ...libDirs.map((d) => `  ${q(`file:${d}/`)},`),
    ...[...pinned].map(([uri, sha]) => `  { uri = ${q(uri)}, sha256 = ${q(sha)} },`),
    ']',
    '',
  );
  return { text: L.join('\n'), pinned };
}

export interface GramineLaunchOptions extends GramineManifestOptions {
  /** The node's data directory; the launch directory is <dataDir>/gramine. */
  dataDir: string;
  /** The Node binary to run in the enclave; its SHA-256 must equal the image manifest's. */
  nodePath?: string;
  /** gramine-sgx-sign executable and its RSA-3072 signing key (default: Gramine's default key). */
  signExecutable?: string;
  signKey?: string;
  /** gramine-sgx executable (default from PATH). */
  executable?: string;
}

function run(file: string, args: string[], cwd: string): Promise<void> {
  return new Promise((res, rej) => {
    execFile(file, args, { cwd, timeout: 600_000, maxBuffer: 4 << 20 }, (err, _out, stderr) => {
      if (err)
        rej(
          new FirnError(
            'E_UNAVAILABLE',
            `${file} failed (${(err as NodeJS.ErrnoException).code ?? 'exit'}): ${String(stderr).slice(-500)}`,
            { cause: err },
          ),
        );
      else res();
    });
  });
}

function link(target: string, path: string): void {
  if (
    existsSync(path) ||
    (() => {
      try {
        return lstatSync(path).isSymbolicLink();
      } catch {
        return false;
      }
    })()
  )
    rmSync(path, { force: true });
  symlinkSync(target, path);
}

/**
 * Prepare `<dataDir>/gramine` to run the image under gramine-sgx: links `image` and `node`, makes
 * `data` (the encrypted mount's host side; mode 0700), writes `firn-enclave.manifest`, and signs
 * it with gramine-sgx-sign into `firn-enclave.manifest.sgx` and `.sig`. Returns the supervisor's
 * launcher. Errors: E_IMAGE_MISMATCH (the Node binary is not the one the image pins),
 * E_UNAVAILABLE (gramine-sgx-sign missing or failing).
 */
export async function prepareGramineLaunch(o: GramineLaunchOptions): Promise<EnclaveLauncher> {
  const launchDir = join(resolve(o.dataDir), 'gramine');
  mkdirSync(join(launchDir, 'data'), { recursive: true, mode: 0o700 });
  const nodePath = o.nodePath ?? process.execPath;
  const nodeSha = createHash('sha256').update(readFileSync(nodePath)).digest('hex');
  if (nodeSha !== hex(o.image.manifest.node.sha256))
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      `the Node binary ${nodePath} is not the one the enclave image was built with (${o.image.manifest.node.version}); rebuild the image`,
    );
  link(resolve(o.image.dir), join(launchDir, 'image'));
  link(nodePath, join(launchDir, 'node'));
  const { text } = generateGramineManifest(o);
  const manifest = join(launchDir, `${GRAMINE_MANIFEST_NAME}.manifest`);
  writeFileSync(`${manifest}.tmp`, text);
  renameSync(`${manifest}.tmp`, manifest);
  await run(
    o.signExecutable ?? 'gramine-sgx-sign',
    [
      '--manifest',
      `${GRAMINE_MANIFEST_NAME}.manifest`,
      '--output',
      `${GRAMINE_MANIFEST_NAME}.manifest.sgx`,
      ...(o.signKey ? ['--key', resolve(o.signKey)] : []),
    ],
    launchDir,
  );
  return {
    kind: 'gramine-sgx',
    manifestDir: launchDir,
    name: GRAMINE_MANIFEST_NAME,
    ...(o.executable ? { executable: o.executable } : {}),
  };
}
