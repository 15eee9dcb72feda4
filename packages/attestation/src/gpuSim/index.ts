export * from './simulatedGpu.ts';
