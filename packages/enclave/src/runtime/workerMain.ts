/**
 * The image's worker entry (`app/worker.mjs`): the only entry that contains the app's code
 * (docs/decisions/1090-app-code-outside-the-keyed-process.md). The enclave process forks it for
 * each job and warm session; it holds no key, no platform file and no environment, and answers
 * its parent over IPC (serveMlRuntime). `node <image>/app/worker.mjs --describe-app` prints the
 * app ({format, name, version, workloads}) as one JSON line and exits: the image builder writes
 * that into the measured manifest, where the enclave process reads the workload names.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeApp, isFirnApp } from '@firn/app';
import { setTfWasmDir } from '@firn/ml';
import imageApp from '../apps/imageApp.ts';
import { ENCLAVE_IMAGE_WASM_DIR } from '../image.ts';
import { serveMlRuntime } from './mlRuntime.ts';

export const DESCRIBE_APP_FLAG = '--describe-app';

if (!isFirnApp(imageApp)) {
  process.stderr.write('the image app module does not export an app made by defineApp\n');
  process.exit(2);
}
if (process.argv.includes(DESCRIBE_APP_FLAG)) {
  process.stdout.write(`${JSON.stringify(describeApp(imageApp))}\n`);
  process.exit(0);
}
// The ML runtimes load only from the measured image, never from the host's node_modules.
setTfWasmDir(join(dirname(dirname(fileURLToPath(import.meta.url))), ENCLAVE_IMAGE_WASM_DIR));
serveMlRuntime(imageApp.workloads);
