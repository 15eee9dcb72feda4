#!/usr/bin/env node
// The firn command. Sources are TypeScript run through tsx's loader (no build step), compiled
// with this installation's tsconfig: never the one of the folder firn is run from (an app
// folder's editor paths must not change how firn itself resolves its dependencies).
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
// `firn artifact` runs in a lean process (no chain, attestation or ML modules loaded).
if (process.argv[2] === 'artifact') await import('../src/artifactMain.ts');
else await import('../src/main.ts');
