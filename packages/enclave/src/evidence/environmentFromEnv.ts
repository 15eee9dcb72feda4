import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirnError, hexToBytes, measurementDigest } from '@firn/core';
import { dcapSelfIdentity, parseSimulatedPlatform } from '@firn/attestation';
import { restoreSimulatedGpu, type SimulatedGpuState } from '@firn/sim/device';
import type { EnclaveEnvironment } from '../enclaveProgram.ts';
import { ENCLAVE_CHILD_ENV } from '../guestLaunch.ts';
import type { EnclaveImageKeyBroker } from '../image.ts';
import { GramineEvidenceProvider } from './gramine.ts';
import { withKmsSealingKey } from './kmsSealingKey.ts';
import { nitroEnvironment, type NsmTransport } from './nitroNsm.ts';
import { NvidiaCommandCollector } from './nvidiaCollector.ts';
import { sevSnpEnvironment } from './sevSnpConfigfs.ts';
import { createSimulatedProvider } from './simulated.ts';
import { TdxConfigfsEvidenceProvider, type TsmFs } from './tdxConfigfs.ts';
import type { EvidenceProvider } from './types.ts';

/**
 * Where the GPU evidence collector lives inside a TD: a fixed path on the guest's measured (verified)
 * root filesystem, run as `<path> <hex nonce>` when it exists. The host never names the program an
 * enclave runs (decision 1711): a host-chosen argv would run code of the host's choice inside the
 * TD, able to obtain genuine quotes over report data of its choice.
 */
export const TDX_GPU_COLLECTOR_PATH = '/opt/firn/bin/collect-gpu-evidence';
/** Longest FIRN_KMS_URL accepted (bytes). */
const MAX_KMS_URL = 2048;

/**
 * The key broker the enclave takes its sealing key from: the identity pinned in the measured
 * image (`pinned`), reached at the host-given FIRN_KMS_URL. The URL is only a route (the host
 * carries every packet anyway); the answer must be signed by the pinned address, so a broker the
 * host runs itself is refused. Without a pin there is no broker, whatever the host sets.
 * Errors: E_INVALID_INPUT when the image pins a broker and FIRN_KMS_URL is missing or not an
 * http(s) URL.
 */
function kmsOf(
  env: NodeJS.ProcessEnv,
  pinned: EnclaveImageKeyBroker | undefined,
): { url: string; brokerAddress: string } | undefined {
  if (pinned === undefined) return undefined;
  const url = env.FIRN_KMS_URL;
  if (!url)
    throw new FirnError(
      'E_INVALID_INPUT',
      `this enclave image pins key broker ${pinned.address}: pass --kms-url (FIRN_KMS_URL) to say where it listens`,
    );
  let ok = false;
  try {
    ok = url.length <= MAX_KMS_URL && ['http:', 'https:'].includes(new URL(url).protocol);
  } catch {}
  if (!ok) throw new FirnError('E_INVALID_INPUT', 'FIRN_KMS_URL must be an http(s) URL of at most 2 KiB');
  return { url, brokerAddress: pinned.address };
}

/**
 * What environmentFromEnv takes besides the host's variables. `keyBroker` is measured
 * configuration: the caller passes it from the image manifest whose digest is `bundleSha256` (or
 * that the hardware measured), never from the host. The others are test seams standing in for the
 * kernel and devices (in-process only: no host variable reaches them).
 */
export interface EnclaveEnvironmentOptions {
  /** The key broker pinned in the measured image manifest (`manifest.keyBroker`), if any. */
  keyBroker?: EnclaveImageKeyBroker;
  /** Stands in for the kernel's configfs-tsm (TDX, SEV-SNP). */
  tsmFs?: TsmFs;
  /** Stands in for the Nitro Secure Module. */
  nsmTransport?: NsmTransport;
  /** Filesystem root for /dev/attestation, configfs and the GPU collector path; default '/'. */
  fsRoot?: string;
}

/**
 * Pick the TEE backend from the environment. The host chooses only what the evidence shows or
 * what cannot change the enclave's code, trust anchors or key source (decision 1712):
 * - FIRN_TEE: sgx-gramine or tdx on real hardware, nitro, sev-snp, or simulated (default); the
 *   backend is visible in every quote, and a production policy refuses the simulated one.
 * - FIRN_SIM_PLATFORM / FIRN_SIM_GPUS / FIRN_SIM_DEBUG: the simulated machine (its platform file
 *   is the simulated hardware, held by the host by design) and a debug flag its quotes carry.
 * - FIRN_KMS_URL: where the key broker pinned by the measured image (`opts.keyBroker`) listens;
 *   ignored when the image pins none. The broker's identity never comes from the host.
 * - FIRN_NSM_HELPER (nitro only): the helper argv, set in the measured EIF's environment (the
 *   parent instance cannot pass it; the node supervisor refuses it).
 * The TDX GPU collector is the fixed TDX_GPU_COLLECTOR_PATH, used when present, run with the fixed
 * ENCLAVE_CHILD_ENV (never the enclave's environment, decision 1730). TDX, Nitro and
 * SEV-SNP have no hardware sealing key: their sealing key comes from the pinned broker, and
 * without one sealingKey() fails with E_UNSUPPORTED. `bundleSha256` is the image digest (the
 * simulated TEE's measurement register). Errors: E_INVALID_INPUT naming the variable to fix,
 * E_UNSUPPORTED for an unknown backend.
 */
export async function environmentFromEnv(
  env: NodeJS.ProcessEnv,
  bundleSha256: Uint8Array,
  deps: EnclaveEnvironmentOptions = {},
): Promise<EnclaveEnvironment> {
  const tee = env.FIRN_TEE ?? 'simulated';
  const kms = kmsOf(env, deps.keyBroker);
  const root = deps.fsRoot ?? '/';
  if (tee === 'simulated') {
    const path = env.FIRN_SIM_PLATFORM;
    if (!path) throw new FirnError('E_INVALID_INPUT', 'FIRN_SIM_PLATFORM is not set');
    const platform = parseSimulatedPlatform(JSON.parse(await readFile(path, 'utf8')));
    const sim = createSimulatedProvider(platform, bundleSha256, { debug: env.FIRN_SIM_DEBUG === '1' });
    const platformId = hexToBytes(platform.platformId);
    const measurement = measurementDigest('simulated', [bundleSha256]);
    const out: EnclaveEnvironment = {
      provider: kms ? withKmsSealingKey(sim, { ...kms, expected: () => ({ measurement, platformId }) }) : sim,
      measurementRegisters: [bundleSha256],
      platformId,
    };
    // Simulated GPUs attached to this simulated machine (composite evidence on the devnet).
    if (env.FIRN_SIM_GPUS) {
      const states = JSON.parse(await readFile(env.FIRN_SIM_GPUS, 'utf8')) as SimulatedGpuState[];
      if (!Array.isArray(states) || states.length > 16)
        throw new FirnError('E_INVALID_INPUT', 'bad simulated GPU file');
      const gpus = states.map(restoreSimulatedGpu);
      out.gpu = { collect: (nonce) => Promise.all(gpus.map((g) => g.collect(nonce))) };
    }
    return out;
  }
  if (tee === 'sgx-gramine' || tee === 'tdx') {
    // TDX has no hardware sealing key: without a broker, sealingKey() fails with E_UNSUPPORTED.
    const tdx = new TdxConfigfsEvidenceProvider({ root, ...(deps.tsmFs ? { fs: deps.tsmFs } : {}) });
    // The hardware measured this program; the enclave learns its registers and PPID from its own quote.
    const self = dcapSelfIdentity(
      (await (tee === 'sgx-gramine' ? new GramineEvidenceProvider({ root }) : tdx).quote(new Uint8Array(64)))
        .quote,
    );
    const expected = () => ({
      measurement: measurementDigest(self.teeType, self.registers),
      platformId: self.platformId,
    });
    const provider: EvidenceProvider =
      tee === 'sgx-gramine'
        ? new GramineEvidenceProvider({ root })
        : kms
          ? withKmsSealingKey(tdx, { ...kms, expected })
          : tdx;
    const out: EnclaveEnvironment = {
      provider,
      measurementRegisters: self.registers,
      platformId: self.platformId,
    };
    // GPU evidence inside a TD: only the collector fixed on the measured root filesystem runs.
    const collector = join(root, ...TDX_GPU_COLLECTOR_PATH.split('/'));
    if (tee === 'tdx' && existsSync(collector))
      out.gpu = new NvidiaCommandCollector({ command: [collector], env: ENCLAVE_CHILD_ENV });
    return out;
  }
  if (tee === 'nitro' || tee === 'sev-snp') {
    const self =
      tee === 'nitro'
        ? await nitroEnvironment({
            root,
            ...(deps.nsmTransport
              ? { transport: deps.nsmTransport }
              : { helper: argvFromEnv(env.FIRN_NSM_HELPER, 'FIRN_NSM_HELPER') }),
          })
        : await sevSnpEnvironment({ root, ...(deps.tsmFs ? { fs: deps.tsmFs } : {}) });
    const expected = () => ({
      measurement: measurementDigest(tee, self.measurementRegisters),
      platformId: self.platformId,
    });
    return {
      provider: kms ? withKmsSealingKey(self.provider, { ...kms, expected }) : self.provider,
      measurementRegisters: self.measurementRegisters,
      platformId: self.platformId,
    };
  }
  throw new FirnError(
    'E_UNSUPPORTED',
    `unknown TEE backend FIRN_TEE=${tee} (one of simulated, sgx-gramine, tdx, nitro, sev-snp)`,
  );
}

/** A JSON list of strings (argv, no shell) from an environment variable; typed error naming it. */
function argvFromEnv(value: string | undefined, name: string): string[] {
  let argv: unknown;
  try {
    argv = value === undefined ? undefined : JSON.parse(value.slice(0, 4096));
  } catch {
    argv = undefined;
  }
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((c) => typeof c === 'string'))
    throw new FirnError('E_INVALID_INPUT', `${name} must be a JSON list of strings (argv of the helper)`);
  return argv;
}
