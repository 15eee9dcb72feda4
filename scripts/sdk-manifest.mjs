#!/usr/bin/env node
// Write the publish manifest of an SDK package into its dist/ (run in the package folder after
// `tsc -p tsconfig.build.json`). The workspace manifest keeps pointing at src/*.ts (tsx and vitest
// run the sources); dist/package.json points at the compiled ESM and .d.ts, names every runtime
// dependency found in the emitted JavaScript with the exact version the workspace pins, and is
// what `npm pack packages/<name>/dist` packs. See docs/decisions/1180-sdk-packages.md.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';

const pkgDir = process.cwd();
const dist = join(pkgDir, 'dist');
const root = join(pkgDir, '..', '..');
const read = (p) => JSON.parse(readFileSync(p, 'utf8'));
const ws = read(join(pkgDir, 'package.json'));
const rootPkg = read(join(root, 'package.json'));

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
const files = walk(dist);

// Relative imports in declarations name the compiled files (.js), as in the JavaScript.
for (const f of files.filter((f) => f.endsWith('.d.ts'))) {
  const s = readFileSync(f, 'utf8');
  const t = s.replace(/(from\s+|import\s*\(\s*)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
  if (t !== s) writeFileSync(f, t);
}

// exports: every workspace entry whose compiled file exists.
const exportsMap = {};
for (const [key, target] of Object.entries(ws.exports ?? {})) {
  if (typeof target !== 'string' || !target.startsWith('./src/') || !target.endsWith('.ts'))
    throw new Error(`${ws.name}: export ${key} is not ./src/*.ts`);
  const base = target.slice('./src/'.length, -'.ts'.length);
  if (!existsSync(join(dist, `${base}.js`))) continue;
  exportsMap[key] = { types: `./${base}.d.ts`, import: `./${base}.js`, default: `./${base}.js` };
}
if (Object.keys(exportsMap).length === 0) throw new Error(`${ws.name}: nothing compiled to dist/`);

// dependencies: bare specifiers of the emitted JavaScript, pinned as the workspace pins them.
const pinned = { ...rootPkg.devDependencies, ...rootPkg.dependencies, ...ws.dependencies };
const builtins = new Set(builtinModules);
const deps = {};
const spec =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*(['"])([^'"]+)\1|import\s*\(\s*(['"])([^'"]+)\3\s*\)|^import\s*(['"])([^'"]+)\5/gm;
for (const f of files.filter((f) => f.endsWith('.js'))) {
  for (const m of readFileSync(f, 'utf8').matchAll(spec)) {
    const s = m[2] ?? m[4] ?? m[6];
    if (!s || s.startsWith('.') || s.startsWith('node:') || builtins.has(s.split('/')[0])) continue;
    const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0];
    if (name.startsWith('@firn/')) {
      deps[name] = ws.version;
      continue;
    }
    const v = pinned[name];
    if (!v)
      throw new Error(`${ws.name}: ${relative(pkgDir, f)} imports ${name}, pinned nowhere in the workspace`);
    deps[name] = v;
  }
}

const manifest = {
  name: ws.name,
  version: ws.version,
  description: ws.description ?? `${ws.name}: part of firn, a network of confidential compute nodes`,
  license: rootPkg.license,
  type: 'module',
  engines: rootPkg.engines,
  exports: exportsMap,
  ...(exportsMap['.'] ? { main: exportsMap['.'].import, types: exportsMap['.'].types } : {}),
  dependencies: Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b))),
};
writeFileSync(join(dist, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
process.stdout.write(`${ws.name}: dist/package.json (${Object.keys(deps).length} dependencies)\n`);
