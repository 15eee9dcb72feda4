/**
 * `@firn/sim`: simulation the devnet and the tests use and no verifier ships. Provisioning of
 * simulated GPUs (a device root, devices under it) and the simulated device (`./device`, the one
 * part a simulated enclave runs). See decision 1230.
 */
export * from './gpuDevice.ts';
export * from './simulatedGpu.ts';
export * from './simulatedPlatform.ts';
