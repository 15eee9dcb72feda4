#!/usr/bin/env node
// Run a TypeScript file of this repository (benchmarks, scripts) through tsx's loader.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: run-ts.mjs FILE.ts [args]\n');
  process.exit(2);
}
// The script sees itself as the entry point (process.argv[1]), as under `node file`.
process.argv.splice(1, 2, resolve(file));
await import(pathToFileURL(resolve(file)).href);
