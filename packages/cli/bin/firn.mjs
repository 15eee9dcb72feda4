#!/usr/bin/env node
// The firn command. Sources are TypeScript run through tsx's loader (no build step), compiled
// with this installation's tsconfig: never the one of the folder firn is run from (an app
// folder's editor paths must not change how firn itself resolves its dependencies).
import { fileURLToPath } from 'node:url';
import { reexecWithAllocator } from './allocator.mjs';

// `firn artifact` runs in a lean process (no chain, attestation or ML modules loaded), under the
// allocator settings of allocator.mjs: glibc reads them only at start, so when they are missing
// this process starts itself once more with them and only waits (decision 1325). tsx is loaded
// after that, so the waiting parent stays a bare Node.
const artifact = process.argv[2] === 'artifact';
if (!artifact || !(await reexecWithAllocator())) {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
  if (artifact) await import('../src/artifactMain.ts');
  else await import('../src/main.ts');
}
