import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type TfBackendName = 'wasm' | 'cpu';

let wasmPathsSet = false;
let wasmDir: string | undefined;

/**
 * Load the TensorFlow.js WebAssembly binaries from `dir` (an absolute directory holding
 * tfjs-backend-wasm*.wasm) instead of the installed package. The enclave points this at its
 * measured image before any job runs, so no runtime file comes from the host's node_modules.
 */
export function setTfWasmDir(dir: string): void {
  if (wasmPathsSet && wasmDir !== dir) throw new Error('the TensorFlow.js wasm directory is already set');
  wasmDir = dir;
}

/**
 * Select the TensorFlow.js backend. 'wasm' loads the WebAssembly binaries from the installed
 * package (never the network) and falls back to the pure-JS 'cpu' backend if they fail to start;
 * the backend actually running is returned so reports can say which one trained.
 */
export async function initTfBackend(preferred: TfBackendName = 'wasm'): Promise<TfBackendName> {
  // PROD silences tfjs's console advice and skips debug checks; the trainer checks losses itself.
  tf.env().set('PROD', true);
  if (preferred === 'wasm') {
    if (!wasmPathsSet) {
      const dir =
        wasmDir ??
        dirname(
          createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
        );
      setWasmPaths(`${dir}/`);
      wasmPathsSet = true;
    }
    try {
      if (tf.getBackend() === 'wasm' || (await tf.setBackend('wasm'))) {
        await tf.ready();
        return 'wasm';
      }
    } catch {
      // fall through to cpu
    }
  }
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  await tf.ready();
  return 'cpu';
}
