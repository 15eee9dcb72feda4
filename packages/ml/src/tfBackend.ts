import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { FirnError } from '@firn/core';
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
 * Whether `name` is the backend TF.js runs kernels on. `tf.getBackend()` alone is not enough:
 * after a failed `setBackend('wasm')` it still answers 'wasm' while the engine holds no backend
 * instance, and the next kernel then initialises the best backend that starts (cpu), a silent
 * fallback. So the engine's instance must be the one registered under `name` (tfjs-core 4.22
 * engine.ts: `setBackend` sets `backendName` before it initialises, `backendInstance` after).
 */
function isRunning(name: TfBackendName): boolean {
  if (tf.getBackend() !== name) return false;
  const instance = (tf.engine() as unknown as { backendInstance?: unknown }).backendInstance;
  return instance != null && instance === tf.engine().registry[name];
}

/**
 * Select the TensorFlow.js backend, exactly the one asked for: 'wasm' loads the WebAssembly
 * binaries from the directory `setTfWasmDir` names (else the installed package; never the
 * network), 'cpu' is the pure-JS backend. There is no fallback: which backend trains decides the
 * floating-point results (and whether a dataset diverges), so it must be a function of the job
 * alone, never of whether wasm starts on this host, which the host can decide by starving the
 * process of memory ("WebAssembly.instantiate(): Out of memory: Cannot allocate Wasm memory for
 * new instance"). Decision 1597. Returns the backend selected.
 * Raises E_UNAVAILABLE when the backend cannot start: a fault of this node, not of the job, and
 * never signed as the requester's (E_UNAVAILABLE is outside decision 1595's table).
 */
export async function initTfBackend(preferred: TfBackendName = 'wasm'): Promise<TfBackendName> {
  // PROD silences tfjs's console advice and skips debug checks; the trainer checks losses itself.
  tf.env().set('PROD', true);
  if (preferred === 'wasm' && !wasmPathsSet) {
    const dir =
      wasmDir ??
      dirname(
        createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
      );
    setWasmPaths(`${dir}/`);
    wasmPathsSet = true;
  }
  let started = isRunning(preferred);
  if (!started) {
    try {
      started = (await tf.setBackend(preferred)) && isRunning(preferred);
    } catch {
      started = false;
    }
  }
  if (!started)
    throw new FirnError(
      'E_UNAVAILABLE',
      `the TensorFlow.js ${preferred} backend could not start on this node (a node fault, not the job's; another node can run it)`,
    );
  await tf.ready();
  return preferred;
}
