// Run by ml-scratch-read-only.test.ts (as an unprivileged user when the test runs as root): one
// job on a child that leaves an unwritable folder in its scratch; prints whether the scratch went.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { childProcessRuntime } from '../../packages/enclave/src/runtime/mlRuntime.ts';

async function main(): Promise<void> {
  const root = process.argv[2]!;
  const rt = childProcessRuntime({
    modulePath: join(import.meta.dirname, 'mlScratchHostileEntry.ts'),
    execArgv: ['--import', 'tsx'],
    scratchRoot: root,
    spare: false,
  });
  const r = await rt.runWorkload('probe', {
    params: {},
    inputs: [],
    progress: () => undefined,
    now: () => 1_750_000_000,
  });
  rt.jobFinished?.();
  const s = new TextDecoder().decode(r.outputs[0]!.bytes);
  for (let i = 0; i < 100 && existsSync(s); i++) await new Promise((q) => setTimeout(q, 50));
  console.log(JSON.stringify({ uid: process.getuid?.(), gone: !existsSync(s), left: readdirSync(root) }));
  rt.close();
}
void main();
