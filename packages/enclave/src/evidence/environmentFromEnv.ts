import { readFile } from 'node:fs/promises';
import { FirnError, hexToBytes } from '@firn/core';
import { parseSimulatedPlatform, restoreSimulatedGpu, type SimulatedGpuState } from '@firn/attestation';
import type { EnclaveEnvironment } from '../enclaveProgram.ts';
import { createSimulatedProvider } from './simulated.ts';

/**
 * Pick the TEE backend from the environment: FIRN_TEE=simulated (FIRN_SIM_PLATFORM names the
 * simulated platform file, FIRN_SIM_GPUS optionally a list of simulated GPUs). Real backends plug in here.
 */
export async function environmentFromEnv(
  env: NodeJS.ProcessEnv,
  bundleSha256: Uint8Array,
): Promise<EnclaveEnvironment> {
  const tee = env.FIRN_TEE ?? 'simulated';
  if (tee === 'simulated') {
    const path = env.FIRN_SIM_PLATFORM;
    if (!path) throw new FirnError('E_INVALID_INPUT', 'FIRN_SIM_PLATFORM is not set');
    const platform = parseSimulatedPlatform(JSON.parse(await readFile(path, 'utf8')));
    const out: EnclaveEnvironment = {
      provider: createSimulatedProvider(platform, bundleSha256, { debug: env.FIRN_SIM_DEBUG === '1' }),
      measurementRegisters: [bundleSha256],
      platformId: hexToBytes(platform.platformId),
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
  throw new FirnError('E_UNSUPPORTED', `unknown TEE backend ${tee}`);
}
