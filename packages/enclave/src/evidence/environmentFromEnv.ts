import { readFile } from 'node:fs/promises';
import { FirnError, hexToBytes, measurementDigest } from '@firn/core';
import { dcapSelfIdentity, parseSimulatedPlatform } from '@firn/attestation';
import { restoreSimulatedGpu, type SimulatedGpuState } from '@firn/sim/device';
import type { EnclaveEnvironment } from '../enclaveProgram.ts';
import { GramineEvidenceProvider } from './gramine.ts';
import { withKmsSealingKey } from './kmsSealingKey.ts';
import { nitroEnvironment, type NsmTransport } from './nitroNsm.ts';
import { NvidiaCommandCollector } from './nvidiaCollector.ts';
import { sevSnpEnvironment } from './sevSnpConfigfs.ts';
import { createSimulatedProvider } from './simulated.ts';
import { TdxConfigfsEvidenceProvider, type TsmFs } from './tdxConfigfs.ts';
import type { EvidenceProvider } from './types.ts';

/** The key broker configured by FIRN_KMS_URL and its pinned identity FIRN_KMS_ADDRESS, if any. */
function kmsFromEnv(env: NodeJS.ProcessEnv): { url: string; brokerAddress: string } | undefined {
  if (!env.FIRN_KMS_URL) return undefined;
  if (!env.FIRN_KMS_ADDRESS)
    throw new FirnError(
      'E_INVALID_INPUT',
      'FIRN_KMS_URL needs FIRN_KMS_ADDRESS (the broker identity to pin)',
    );
  return { url: env.FIRN_KMS_URL, brokerAddress: env.FIRN_KMS_ADDRESS };
}

/**
 * Pick the TEE backend from the environment: FIRN_TEE=sgx-gramine or tdx on real hardware
 * (FIRN_FS_ROOT relocates /dev/attestation or configfs for tests; FIRN_GPU_COLLECTOR is the argv of
 * a command printing NVIDIA SDK evidence JSON), or FIRN_TEE=simulated (FIRN_SIM_PLATFORM names the
 * simulated platform file, FIRN_SIM_GPUS optionally a list of simulated GPUs). FIRN_KMS_URL and
 * FIRN_KMS_ADDRESS take the sealing key from the key broker (required on TDX, which has no
 * hardware sealing key; optional on the simulated TEE). FIRN_TEE=nitro talks to `/dev/nsm` through
 * the helper named by FIRN_NSM_HELPER (a JSON argv list; Node cannot issue the ioctl itself);
 * FIRN_TEE=sev-snp reads its report through configfs-tsm. Neither has a hardware sealing key, so
 * both take it from the key broker when FIRN_KMS_URL is set. `deps.tsmFs` and `deps.nsmTransport`
 * let tests stand in for the kernel's configfs-tsm and the NSM. Real backends plug in here.
 */
export async function environmentFromEnv(
  env: NodeJS.ProcessEnv,
  bundleSha256: Uint8Array,
  deps: { tsmFs?: TsmFs; nsmTransport?: NsmTransport } = {},
): Promise<EnclaveEnvironment> {
  const tee = env.FIRN_TEE ?? 'simulated';
  const kms = kmsFromEnv(env);
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
    const root = env.FIRN_FS_ROOT ?? '/';
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
    if (env.FIRN_GPU_COLLECTOR) {
      let command: unknown;
      try {
        command = JSON.parse(env.FIRN_GPU_COLLECTOR.slice(0, 4096));
      } catch {
        command = undefined;
      }
      if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string'))
        throw new FirnError('E_INVALID_INPUT', 'FIRN_GPU_COLLECTOR must be a JSON list of strings (argv)');
      out.gpu = new NvidiaCommandCollector({ command });
    }
    return out;
  }
  if (tee === 'nitro' || tee === 'sev-snp') {
    const root = env.FIRN_FS_ROOT ?? '/';
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
