/**
 * `node <image>/app/enclave.mjs --describe-app` prints the app the image serves
 * ({format, name, version, workloads}) as one JSON line and exits, before the enclave program
 * starts: no keys, no evidence, no job. The image builder imports this module ahead of main.ts,
 * so it runs first (ES module evaluation order).
 */
import { describeApp, isFirnApp } from '@firn/app';
import imageApp from '../apps/imageApp.ts';

export const DESCRIBE_APP_FLAG = '--describe-app';

if (process.argv.includes(DESCRIBE_APP_FLAG)) {
  if (!isFirnApp(imageApp)) {
    process.stderr.write('the image app module does not export an app made by defineApp\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(describeApp(imageApp))}\n`);
  process.exit(0);
}
