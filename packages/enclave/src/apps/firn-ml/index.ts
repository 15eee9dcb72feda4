import { defineApp } from '@firn/app';
import inferenceApp from '../inference/index.ts';
import trainingApp from '../training/index.ts';

/**
 * The app of the default enclave image (packages/enclave/dist/image): the first-party inference
 * and training apps served by one enclave, as firn nodes and requesters have used them so far.
 */
export default defineApp({
  name: 'firn-ml',
  version: '1.0.0',
  workloads: { ...inferenceApp.workloads, ...trainingApp.workloads },
});
