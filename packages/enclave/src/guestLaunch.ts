import { join } from 'node:path';
import { FirnError } from '@firn/core';

/**
 * What an enclave in a measured guest (a TDX TD, an SEV-SNP guest) runs and reads (decision 1730).
 *
 * There the hardware measures the guest's boot (TDX MRTD and RTMR0..3, SEV-SNP MEASUREMENT: firmware,
 * kernel, initrd, command line), never the enclave image: the image, Node and the GPU collector are
 * covered only because the guest boots from a verified root filesystem (a dm-verity root hash on the
 * measured command line, docs/deploy-tdx-h100.md). So the program the enclave process runs must be
 * a path on that filesystem fixed in this (measured) code, never one the host names: an image the
 * host wrote anywhere else would run with the genuine guest's measurement and be released its
 * sealing key by the pinned broker. The simulated TEE, SGX/Gramine and Nitro measure the image
 * itself and keep taking it from the host.
 */

/** TEEs whose measurement covers the guest's boot but not the enclave image. */
export const GUEST_MEASURED_TEES = ['tdx', 'sev-snp'] as const;
/** The enclave image directory on the guest's verified root filesystem (`firn node build-image --out`). */
export const GUEST_IMAGE_DIR = '/opt/firn/image';
/** The enclave entry a measured guest runs: `GUEST_IMAGE_DIR/app/enclave.mjs`. */
export const GUEST_ENCLAVE_ENTRY = '/opt/firn/image/app/enclave.mjs';
/** The Node binary a measured guest runs the enclave with (a regular file, not a link). */
export const GUEST_NODE_PATH = '/opt/firn/bin/node';

/**
 * The only environment variables the host may hand the enclave process (decision 1712). Each is
 * configuration that cannot choose the enclave's code, trust anchors, key source or filesystem
 * root, never a secret: FIRN_TEE (shown in every quote), FIRN_SIM_PLATFORM / FIRN_SIM_GPUS /
 * FIRN_SIM_DEBUG (the simulated machine), FIRN_KMS_URL (where the key broker the measured image
 * pins listens: a route, not an identity), FIRN_LOG_LEVEL. PATH is not on it (decision 1730): the
 * enclave resolves no program by name, and its children get ENCLAVE_CHILD_ENV.
 */
export const ENCLAVE_ENV_ALLOW_LIST = [
  'FIRN_TEE',
  'FIRN_SIM_PLATFORM',
  'FIRN_SIM_GPUS',
  'FIRN_SIM_DEBUG',
  'FIRN_KMS_URL',
  'FIRN_LOG_LEVEL',
] as const;
/** A name on ENCLAVE_ENV_ALLOW_LIST. */
export type EnclaveEnvName = (typeof ENCLAVE_ENV_ALLOW_LIST)[number];

/**
 * Variables a TEE's own measured configuration sets, beside the allow-list: Gramine's manifest
 * (LD_LIBRARY_PATH, FIRN_DATA_DIR) and a Nitro EIF's environment (FIRN_NSM_HELPER). The host sets
 * none of them (the supervisor refuses them).
 */
const MEASURED_ENV: Readonly<Record<string, readonly string[]>> = {
  'sgx-gramine': ['LD_LIBRARY_PATH', 'FIRN_DATA_DIR'],
  nitro: ['FIRN_NSM_HELPER'],
};

/**
 * The whole environment of every program the enclave starts (GPU collector, NSM helper): a fixed
 * PATH of the (measured) system directories and nothing the host set, so a wrapper script that runs
 * a tool by name finds the guest's own, never one from a directory the host chose.
 */
export const ENCLAVE_CHILD_ENV: Readonly<Record<string, string>> = Object.freeze({ PATH: '/usr/bin:/bin' });

/** True for a TEE whose measurement does not include the enclave image (GUEST_MEASURED_TEES). */
export function isGuestMeasuredTee(tee: string | undefined): boolean {
  return (GUEST_MEASURED_TEES as readonly string[]).includes(tee ?? '');
}

/**
 * Apply the enclave's environment allow-list to `env` (the enclave's own `process.env`, changed in
 * place) for backend `tee`. In a measured guest (tdx, sev-snp) any name off ENCLAVE_ENV_ALLOW_LIST
 * stops the enclave: there the supervisor of the guest's fixed unit passes exactly the list, and a
 * variable such as OPENSSL_CONF or TZ acts before this code runs, so dropping it would be too late.
 * Elsewhere (simulated, sgx-gramine, nitro) names off the list and off the TEE's measured
 * configuration are deleted, so nothing later reads or passes them on. Returns the names deleted.
 * Errors: E_IMAGE_MISMATCH naming the first refused variable (its name only, never its value).
 */
export function applyEnclaveEnvAllowList(env: NodeJS.ProcessEnv, tee: string | undefined): string[] {
  const allowed = new Set<string>([...ENCLAVE_ENV_ALLOW_LIST, ...(MEASURED_ENV[tee ?? ''] ?? [])]);
  const off = Object.keys(env).filter((k) => !allowed.has(k));
  if (off.length > 0 && isGuestMeasuredTee(tee))
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      `a ${tee} enclave runs only with the variables ${ENCLAVE_ENV_ALLOW_LIST.join(', ')}; ${off[0]!.slice(0, 64)} is set (the guest's fixed unit starts it; no other launcher may)`,
    );
  for (const k of off) delete env[k];
  return off;
}

/** Where checkGuestLaunch looks; `fsRoot` is an in-process test seam (no host variable reaches it). */
export interface GuestLaunchOptions {
  /** The backend (FIRN_TEE). */
  tee: string | undefined;
  /** The running entry file, symlinks resolved (main.ts: fileURLToPath(import.meta.url)). */
  entry: string;
  /** The running Node binary (process.execPath, symlinks resolved by the kernel). */
  execPath: string;
  /** Root the fixed guest paths live under; default '/'. Tests only. */
  fsRoot?: string;
}

/**
 * In a measured guest (tdx, sev-snp) the enclave runs only as `GUEST_NODE_PATH GUEST_ENCLAVE_ENTRY`
 * from the verified root filesystem: a defence in depth behind the supervisor and the CLI, which
 * start nothing else. Paths are compared exactly (the running entry and execPath are resolved
 * paths, so a link from the fixed path to a writable place is refused too). Other TEEs measure the
 * image and pass unchecked. Errors: E_IMAGE_MISMATCH naming the fixed path expected.
 */
export function checkGuestLaunch(o: GuestLaunchOptions): void {
  if (!isGuestMeasuredTee(o.tee)) return;
  const root = o.fsRoot ?? '/';
  const entry = join(root, ...GUEST_ENCLAVE_ENTRY.split('/'));
  const node = join(root, ...GUEST_NODE_PATH.split('/'));
  if (o.entry !== entry)
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      `a ${o.tee} enclave runs only the image on the guest's verified root filesystem, ${entry}; this is ${o.entry.slice(0, 256)}`,
    );
  if (o.execPath !== node)
    throw new FirnError(
      'E_IMAGE_MISMATCH',
      `a ${o.tee} enclave runs only under the Node binary on the guest's verified root filesystem, ${node}; this is ${o.execPath.slice(0, 256)}`,
    );
}
