import { defineApp } from '@firn/app';
import { inference } from '../../jobs/workloads/inference.ts';

/**
 * The first-party inference app: one workload, `inference` (roles `model`: ONNX, `input`: tensor
 * JSON; output `output`). Built alone with `firn app build packages/enclave/src/apps/inference`.
 */
export default defineApp({ name: 'inference', version: '1.0.0', workloads: { inference } });
