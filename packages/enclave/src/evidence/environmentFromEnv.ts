import { readFile } from 'node:fs/promises';
import { FirnError, hexToBytes } from '@firn/core';
import { parseSimulatedPlatform } from '@firn/attestation';
import type { EnclaveEnvironment } from '../enclaveProgram.ts';
import { createSimulatedProvider } from './simulated.ts';

/**
 * Pick the TEE backend from the environment: FIRN_TEE=simulated (FIRN_SIM_PLATFORM names the
 * simulated platform file). Real backends plug in here.
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
    return {
      provider: createSimulatedProvider(platform, bundleSha256, { debug: env.FIRN_SIM_DEBUG === '1' }),
      measurementRegisters: [bundleSha256],
      platformId: hexToBytes(platform.platformId),
    };
  }
  throw new FirnError('E_UNSUPPORTED', `unknown TEE backend ${tee}`);
}
