#!/usr/bin/env node
// The firn command. Sources are TypeScript run through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

register();
// `firn artifact` runs in a lean process (no chain, attestation or ML modules loaded).
if (process.argv[2] === 'artifact') await import('../src/artifactMain.ts');
else await import('../src/main.ts');
