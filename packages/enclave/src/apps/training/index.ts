import { defineApp } from '@firn/app';
import { training } from '../../jobs/workloads/training.ts';

/**
 * The first-party training app: one workload, `training` (roles `dataset`, optional `model` and
 * `weights`; outputs weights, preprocessing, report, definition, ONNX graph).
 */
export default defineApp({ name: 'training', version: '1.0.0', workloads: { training } });
