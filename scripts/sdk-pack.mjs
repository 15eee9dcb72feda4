#!/usr/bin/env node
// Build the SDK packages to dist/ (ESM + .d.ts, in dependency order) and, with --pack DIR, pack
// each one with `npm pack` into DIR. Usage: node scripts/sdk-pack.mjs [--pack DIR] [name ...]
// See docs/decisions/1180-sdk-packages.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Dependency order. `app` joins after `client` once packages/app exists. */
export const SDK_PACKAGES = ['core', 'crypto', 'attestation', 'chain', 'ml', 'client', 'app'];

const args = process.argv.slice(2);
const packAt = args.indexOf('--pack');
const packDir = packAt >= 0 ? resolve(args[packAt + 1] ?? '') : undefined;
if (packAt >= 0) args.splice(packAt, 2);
const wanted = args.length ? args : SDK_PACKAGES;
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

const tarballs = [];
for (const name of SDK_PACKAGES) {
  const dir = join(root, 'packages', name);
  if (!wanted.includes(name) || !existsSync(join(dir, 'tsconfig.build.json'))) continue;
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  execFileSync(process.execPath, [join(root, 'scripts', 'sdk-manifest.mjs')], { cwd: dir, stdio: 'inherit' });
  if (packDir) {
    mkdirSync(packDir, { recursive: true });
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', packDir, join(dir, 'dist')], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [info] = JSON.parse(out);
    tarballs.push(join(packDir, info.filename));
  }
}
if (packDir) process.stdout.write(`${JSON.stringify(tarballs)}\n`);
