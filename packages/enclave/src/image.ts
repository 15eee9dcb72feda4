import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import {
  bytesToHex,
  encodeFields,
  FirnError,
  type Hex,
  hexBytes,
  TAGS,
  taggedSha256,
  u64be,
  utf8,
} from '@firn/core';

/**
 * The enclave image (docs/enclave-image.md): a directory holding every file that runs inside the
 * enclave, and `manifest.json` listing each with its SHA-256 and size, plus the Node.js version
 * and binary hash. Its digest is the simulated TEE's measurement register and the list the
 * Gramine manifest takes as trusted files. Layout:
 *
 *   manifest.json
 *   app/enclave.mjs                         the enclave entry (program, framework; keys; no app)
 *   app/worker.mjs                          the runtime child's entry (the app, ML JS; no key)
 *   ort/onnxruntime_binding.node            onnxruntime-node's N-API binding
 *   ort/libonnxruntime.so.1                 its shared library (RUNPATH $ORIGIN)
 *   wasm/tfjs-backend-wasm*.wasm            TensorFlow.js WebAssembly binaries
 */

export const ENCLAVE_IMAGE_FORMAT = 'firn/enclave-image/v1';
export const ENCLAVE_IMAGE_MANIFEST = 'manifest.json';
export const ENCLAVE_IMAGE_ENTRY = 'app/enclave.mjs';
/**
 * The runtime child's entry: the app's code with the ML runtimes, started by the enclave for each
 * job, holding no key (docs/decisions/1090-app-code-outside-the-keyed-process.md). The enclave
 * entry never imports the app.
 */
export const ENCLAVE_IMAGE_WORKER = 'app/worker.mjs';
/** Most workload names an image's app may declare in its manifest. */
export const MAX_IMAGE_APP_WORKLOADS = 64;
/** Where the ML runtimes live inside the image, relative to its root. */
export const ENCLAVE_IMAGE_ORT_DIR = 'ort';
export const ENCLAVE_IMAGE_WASM_DIR = 'wasm';
export const MAX_IMAGE_MANIFEST_BYTES = 256 * 1024;
export const MAX_IMAGE_FILES = 256;
/** Largest single image file (the onnxruntime shared library is about 44 MB). */
export const MAX_IMAGE_FILE_BYTES = 512 * 1024 * 1024;

export interface EnclaveImageFile {
  /** Relative to the image root, '/'-separated, no '..'. */
  path: string;
  /** SHA-256 of the file's bytes. */
  sha256: Hex;
  /** Bytes. */
  size: number;
}

export interface EnclaveImageNode {
  /** `process.version`, e.g. "v20.19.0". */
  version: string;
  /** `process.platform` and `process.arch` the native files were built for. */
  platform: string;
  arch: string;
  /** SHA-256 of the Node.js binary the image was built with (it runs the image). */
  sha256: Hex;
  size: number;
}

/**
 * The app an image serves, written at build time (from the worker entry's `--describe-app`) and
 * covered by the image digest, so by the measurement. The enclave process learns the workload
 * names here and never loads the app's code itself.
 */
export interface EnclaveImageApp {
  /** The app's name (a role-like name, ≤ 64 chars). */
  name: string;
  /** The app's version (≤ 32 chars). */
  version: string;
  /** Workload names (job kinds), sorted, unique, at most MAX_IMAGE_APP_WORKLOADS. */
  workloads: string[];
  /**
   * True only for the first-party image (`firn-ml`, built without `--app`): a request that names
   * no app runs only on such an image. A build-time property, measured with the rest.
   */
  firstParty: boolean;
}

export interface EnclaveImageManifest {
  format: typeof ENCLAVE_IMAGE_FORMAT;
  /** The file Node runs (relative path; one of `files`). */
  entry: string;
  node: EnclaveImageNode;
  /** Sorted by path, no duplicates. */
  files: EnclaveImageFile[];
  /** The app the image serves (absent in images built before 1090; such an image serves no job). */
  app?: EnclaveImageApp;
  /**
   * The key broker this image takes its sealing key from (decision 1710), fixed at build time and
   * covered by the image digest, so by the measurement: another broker means another measurement.
   * Absent: the enclave seals with the platform's own key (simulated, SGX) and a TEE without one
   * (TDX, Nitro, SEV-SNP) cannot seal. The host only says where to reach the broker (FIRN_KMS_URL).
   */
  keyBroker?: EnclaveImageKeyBroker;
}

/** The pinned key broker identity in an image manifest. */
export interface EnclaveImageKeyBroker {
  /** The broker's identity address (0x + 40 hex, lower case), which signs its key releases. */
  address: Hex;
}

const mismatch = (message: string, details?: Record<string, string | number>) =>
  new FirnError('E_IMAGE_MISMATCH', message, details ? { details } : {});
const PATH_RE = /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*(\/[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*)*$/;

function checkPath(p: unknown): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 256 || !PATH_RE.test(p))
    throw mismatch('image manifest lists a file path that is not a plain relative path');
  if (p.split('/').some((s) => s === '.' || s === '..'))
    throw mismatch('image manifest lists a path with . or ..');
  return p;
}

function checkInt(v: unknown, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max)
    throw mismatch(`image manifest field ${what} must be an integer in 0..${max}`);
  return v;
}

function checkText(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64 || !/^[A-Za-z0-9._-]+$/.test(v))
    throw mismatch(`image manifest field ${what} is not a short name`);
  return v;
}

function checkHash(v: unknown, what: string): Hex {
  try {
    return bytesToHex(hexBytes(v, what, 32));
  } catch {
    throw mismatch(`image manifest field ${what} is not a 32-byte hex hash`);
  }
}

/**
 * Parse `manifest.json` bytes: size-capped, every field checked, files sorted and unique.
 * Throws E_IMAGE_MISMATCH (the image cannot be trusted as described) on any defect.
 */
export function parseEnclaveImageManifest(bytes: Uint8Array): EnclaveImageManifest {
  if (bytes.length > MAX_IMAGE_MANIFEST_BYTES)
    throw mismatch(`image manifest is over ${MAX_IMAGE_MANIFEST_BYTES} bytes`);
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw mismatch('image manifest is not JSON');
  }
  const r = o as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r))
    throw mismatch('image manifest must be an object');
  for (const k of Object.keys(r))
    if (!['format', 'entry', 'node', 'files', 'app', 'keyBroker'].includes(k))
      throw mismatch(`unknown image manifest field ${k.slice(0, 32)}`);
  if (r.format !== ENCLAVE_IMAGE_FORMAT)
    throw mismatch(`image manifest format is not ${ENCLAVE_IMAGE_FORMAT}`);
  const n = r.node as Record<string, unknown> | null;
  if (typeof n !== 'object' || n === null) throw mismatch('image manifest has no node object');
  const node: EnclaveImageNode = {
    version: checkText(n.version, 'node.version'),
    platform: checkText(n.platform, 'node.platform'),
    arch: checkText(n.arch, 'node.arch'),
    sha256: checkHash(n.sha256, 'node.sha256'),
    size: checkInt(n.size, 'node.size', Number.MAX_SAFE_INTEGER),
  };
  if (!Array.isArray(r.files) || r.files.length === 0 || r.files.length > MAX_IMAGE_FILES)
    throw mismatch(`image manifest must list 1..${MAX_IMAGE_FILES} files`);
  const files = r.files.map((f: unknown, i: number): EnclaveImageFile => {
    const e = f as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null) throw mismatch(`image manifest files[${i}] is not an object`);
    return {
      path: checkPath(e.path),
      sha256: checkHash(e.sha256, `files[${i}].sha256`),
      size: checkInt(e.size, `files[${i}].size`, MAX_IMAGE_FILE_BYTES),
    };
  });
  for (let i = 1; i < files.length; i++)
    if (!(files[i - 1]!.path < files[i]!.path))
      throw mismatch('image manifest files must be sorted and unique');
  const entry = checkPath(r.entry);
  if (!files.some((f) => f.path === entry)) throw mismatch('image manifest entry is not one of its files');
  const app = r.app === undefined ? undefined : parseImageApp(r.app);
  const keyBroker = r.keyBroker === undefined ? undefined : parseImageKeyBroker(r.keyBroker);
  return {
    format: ENCLAVE_IMAGE_FORMAT,
    entry,
    node,
    files,
    ...(app ? { app } : {}),
    ...(keyBroker ? { keyBroker } : {}),
  };
}

/**
 * Check a key broker pin: `{ address }`, a 20-byte hex address, returned lower case.
 * Throws E_IMAGE_MISMATCH on any other shape.
 */
export function parseImageKeyBroker(v: unknown): EnclaveImageKeyBroker {
  const b = v as Record<string, unknown> | null;
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw mismatch('image manifest field keyBroker must be an object');
  for (const k of Object.keys(b))
    if (k !== 'address') throw mismatch(`unknown image manifest field keyBroker.${k.slice(0, 32)}`);
  if (typeof b.address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(b.address))
    throw mismatch('image manifest field keyBroker.address is not a 20-byte hex address');
  return { address: b.address.toLowerCase() as Hex };
}

const APP_NAME = /^[a-z][a-z0-9_.-]{0,63}$/;

function parseImageApp(v: unknown): EnclaveImageApp {
  const a = v as Record<string, unknown> | null;
  if (typeof a !== 'object' || a === null || Array.isArray(a))
    throw mismatch('image manifest field app must be an object');
  for (const k of Object.keys(a))
    if (!['name', 'version', 'workloads', 'firstParty'].includes(k))
      throw mismatch(`unknown image manifest field app.${k.slice(0, 32)}`);
  if (typeof a.name !== 'string' || !APP_NAME.test(a.name))
    throw mismatch('image manifest field app.name is not an app name');
  if (typeof a.version !== 'string' || a.version.length > 32 || /[^\x20-\x7e]/.test(a.version))
    throw mismatch('image manifest field app.version is not a short printable version');
  if (typeof a.firstParty !== 'boolean')
    throw mismatch('image manifest field app.firstParty is not a boolean');
  if (!Array.isArray(a.workloads) || a.workloads.length === 0 || a.workloads.length > MAX_IMAGE_APP_WORKLOADS)
    throw mismatch(`image manifest field app.workloads must list 1..${MAX_IMAGE_APP_WORKLOADS} names`);
  const workloads = a.workloads.map((w: unknown) => {
    if (typeof w !== 'string' || !APP_NAME.test(w))
      throw mismatch('image manifest field app.workloads holds a name that is not a workload name');
    return w;
  });
  for (let i = 1; i < workloads.length; i++)
    if (!(workloads[i - 1]! < workloads[i]!))
      throw mismatch('image manifest field app.workloads must be sorted and unique');
  return { name: a.name, version: a.version, workloads, firstParty: a.firstParty };
}

/**
 * The image digest: taggedSha256("firn/enclave-image/v1", format, entry, node version, platform,
 * arch, node sha256, node size, then per file path, sha256, size, then, when the manifest has an
 * app section, "app", name, version, firstParty (u64 0/1), workload count, each workload name). Equal manifests give equal
 * digests; the simulated TEE's measurement is measurementDigest('simulated', [digest]).
 */
export function enclaveImageDigest(m: EnclaveImageManifest): Uint8Array {
  const fields: Uint8Array[] = [
    utf8(m.format),
    utf8(m.entry),
    utf8(m.node.version),
    utf8(m.node.platform),
    utf8(m.node.arch),
    hexBytes(m.node.sha256, 'node.sha256', 32),
    u64be(m.node.size),
  ];
  for (const f of m.files) fields.push(utf8(f.path), hexBytes(f.sha256, 'sha256', 32), u64be(f.size));
  // The app section (1090): its name, version, first-party flag and workload names are measured.
  if (m.app !== undefined) {
    fields.push(utf8('app'), utf8(m.app.name), utf8(m.app.version), u64be(m.app.firstParty ? 1 : 0));
    fields.push(u64be(m.app.workloads.length), ...m.app.workloads.map((w) => utf8(w)));
  }
  // The pinned key broker (1710): another broker is another measurement.
  if (m.keyBroker !== undefined)
    fields.push(utf8('keyBroker'), hexBytes(m.keyBroker.address, 'keyBroker.address', 20));
  return taggedSha256(TAGS.enclaveImage, encodeFields(fields));
}

/** SHA-256 and size of a file, read in 1 MiB chunks (the Node binary is ~100 MB). */
export function hashFile(path: string, maxBytes = Number.MAX_SAFE_INTEGER): { sha256: Hex; size: number } {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const fd = openSync(path, 'r');
  let size = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      size += n;
      if (size > maxBytes) throw mismatch(`image file is over ${maxBytes} bytes`);
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return { sha256: bytesToHex(new Uint8Array(h.digest())), size };
}

function listFiles(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return listFiles(p, root);
    return [relative(root, p).split(sep).join('/')];
  });
}

export interface VerifyEnclaveImageOptions {
  /** The Node binary running the image; default process.execPath. */
  nodeExecPath?: string;
  /** Default process.version / platform / arch. */
  nodeVersion?: string;
  platform?: string;
  arch?: string;
  /** Skip hashing the Node binary (tests that run under another Node than the image's). */
  skipNodeBinary?: boolean;
}

export interface VerifiedEnclaveImage {
  dir: string;
  manifest: EnclaveImageManifest;
  /** 32 bytes: the image digest (the simulated TEE's measurement register). */
  digest: Uint8Array;
}

/**
 * Check an image directory against its own manifest: every listed file exists with the listed
 * SHA-256 and size, no other file is present, and the running Node has the listed version,
 * platform, arch and binary hash. It proves the files on disk now are the measured ones; it does
 * not prove the manifest is an allow-listed one (the measurement derived from it is what the
 * requester checks), nor that files stay unchanged after the check (a TEE's loader measures at
 * load time; the simulated TEE gives no isolation). Throws E_IMAGE_MISMATCH naming the file.
 */
export function verifyEnclaveImage(dir: string, opts: VerifyEnclaveImageOptions = {}): VerifiedEnclaveImage {
  let raw: Uint8Array;
  try {
    const path = join(dir, ENCLAVE_IMAGE_MANIFEST);
    if (statSync(path).size > MAX_IMAGE_MANIFEST_BYTES)
      throw mismatch(`image manifest is over ${MAX_IMAGE_MANIFEST_BYTES} bytes`);
    raw = new Uint8Array(readFileSync(path));
  } catch (e) {
    if (e instanceof FirnError) throw e;
    throw mismatch(`no ${ENCLAVE_IMAGE_MANIFEST} in the enclave image directory`);
  }
  const manifest = parseEnclaveImageManifest(raw);
  const listed = new Set(manifest.files.map((f) => f.path));
  listed.add(ENCLAVE_IMAGE_MANIFEST);
  for (const p of listFiles(dir))
    if (!listed.has(p))
      throw mismatch(`file ${p} is in the image directory but not in its manifest`, { file: p });
  for (const f of manifest.files) {
    let got: { sha256: Hex; size: number };
    try {
      got = hashFile(join(dir, ...f.path.split('/')), MAX_IMAGE_FILE_BYTES);
    } catch (e) {
      if (e instanceof FirnError) throw e;
      throw mismatch(`image file ${f.path} is missing`, { file: f.path });
    }
    if (got.sha256 !== f.sha256 || got.size !== f.size)
      throw mismatch(`image file ${f.path} does not match its SHA-256 in the manifest`, { file: f.path });
  }
  const version = opts.nodeVersion ?? process.version;
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  if (manifest.node.version !== version || manifest.node.platform !== platform || manifest.node.arch !== arch)
    throw mismatch(
      `the image was built for Node ${manifest.node.version} ${manifest.node.platform}-${manifest.node.arch}, this is ${version} ${platform}-${arch}`,
    );
  if (!opts.skipNodeBinary) {
    const got = hashFile(opts.nodeExecPath ?? process.execPath);
    if (got.sha256 !== manifest.node.sha256 || got.size !== manifest.node.size)
      throw mismatch('the Node binary does not match its SHA-256 in the image manifest');
  }
  return { dir, manifest, digest: enclaveImageDigest(manifest) };
}
