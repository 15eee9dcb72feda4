#!/usr/bin/env node
// Run the forge binary installed from npm, offline, with our solc-js stand-in as the compiler.
// Usage (from contracts/): node ../scripts/forge.mjs <forge args...>
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const require = createRequire(join(root, 'package.json'));

// The executable bit can be lost by some checkouts or archive tools; forge needs it to exec solc.
const solc = join(here, 'solc');
if ((statSync(solc).mode & 0o111) !== 0o111) chmodSync(solc, 0o755);

function forgeBinary() {
  const pkg = `@foundry-rs/forge-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`;
  try {
    const p = join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'forge');
    if (existsSync(p)) return p;
  } catch {}
  // Fall back to the npm wrapper, which picks the platform package itself.
  return join(root, 'node_modules', '.bin', 'forge');
}

const child = spawn(forgeBinary(), process.argv.slice(2), {
  stdio: 'inherit',
  env: { ...process.env, FOUNDRY_OFFLINE: 'true', FOUNDRY_SOLC: solc, FOUNDRY_DISABLE_NIGHTLY_WARNING: '1' },
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
