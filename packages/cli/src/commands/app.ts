import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { assertRole, FirnError, type Hex, repoRoot } from '@firn/core';
import { type AppImage, appSourcePlugin, buildAppImage } from '@firn/node';
import type { Command } from 'commander';
import { build } from 'esbuild';
import { printError, printJson } from '../output.ts';

/**
 * `firn app init|build|test` (issue 12; docs/decisions/1080-app-model.md): scaffold a TypeScript
 * app, build it into an enclave image whose measurement is its identity, and run its tests with
 * the local harness (`@firn/app/testing`). `@firn/app` resolves from this installation, so an app
 * folder anywhere on disk works without installing anything into it.
 */

/** What `firn app build --json` prints. */
export interface AppBuildOutput {
  /** The simulated measurement (hex) to allow-list and register. */
  measurement: string;
  /** The image digest (hex): the tagged hash of the manifest. */
  imageDigest: string;
  /** Absolute image directory; the host runs `node IMAGE/app/enclave.mjs`. */
  image: string;
  entry: string;
  app: { name: string; version: string };
  /** Workload names the image serves, sorted. */
  workloads: string[];
  /** Number of files the manifest lists. */
  files: number;
}

/** Build the app in `dir` (see buildAppImage) and return the JSON the CLI prints. */
export async function appBuildCommand(
  dir: string,
  o: { out?: string; keyBroker?: string } = {},
): Promise<AppBuildOutput> {
  const r: AppImage = await buildAppImage({
    appDir: dir,
    ...(o.out ? { outDir: o.out } : {}),
    ...(o.keyBroker ? { keyBroker: o.keyBroker as Hex } : {}),
  });
  return {
    measurement: r.measurement,
    imageDigest: r.imageDigest,
    image: r.image.dir,
    entry: r.image.entry,
    app: { name: r.app.name, version: r.app.version },
    workloads: r.app.workloads,
    files: r.image.files.length,
  };
}

const SCAFFOLD_APP = `import { defineApp } from '@firn/app';

/**
 * A firn app: each workload runs inside the enclave, sees its job's decrypted inputs and params,
 * and returns outputs that are sealed to the job's recipients. \`firn app build .\` prints the
 * measurement that identifies exactly this code.
 */
export default defineApp({
  name: '__NAME__',
  version: '0.1.0',
  workloads: {
    /**
     * Reverse the bytes of input "data"; the enclave signs a salted commitment to them for the data
     * ledger. The record is public (the host and the chain see it), so it is salted: it confirms
     * no guess of the input, and only the requester, who gets the salt sealed, can open it.
     */
    async reverse(ctx) {
      const data = ctx.input('data');
      ctx.progress({ stage: 'reversing', bytes: data.length }); // sealed to the requester
      const c = ctx.commit(data); // SHA-256(tag || salt || data), salt from ctx.random
      await ctx.signData(c.digest, { topic: 'input-commitment' }); // public: on chain
      return {
        outputs: [
          { role: 'result', contentType: 'application/octet-stream', bytes: data.slice().reverse() },
          { role: 'salt', contentType: 'application/octet-stream', bytes: c.salt }, // sealed
        ],
        // Public (on chain): derived only from the input's size, which its sealed file shows anyway.
        workUnits: BigInt(data.length),
      };
    },
  },
});
`;

const SCAFFOLD_TEST = `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { verifyCommitment } from '@firn/app';
import { runWorkload } from '@firn/app/testing';
import app from '../src/index.ts';

test('reverse returns the bytes reversed and signs a salted commitment to them', async () => {
  const data = new TextEncoder().encode('abc');
  const r = await runWorkload(app, 'reverse', { inputs: { data } });
  assert.equal(new TextDecoder().decode(r.outputs[0]!.bytes), 'cba');
  assert.equal(r.records.length, 1);
  assert.equal(r.records[0]!.topic, 'input-commitment');
  // The requester opens the public record with the sealed salt; without it, a guess confirms nothing.
  const salt = r.outputs.find((o) => o.role === 'salt')!.bytes;
  assert.equal(verifyCommitment(r.records[0]!.digest, salt, data), true);
  assert.equal(verifyCommitment(r.records[0]!.digest, new Uint8Array(32), data), false);
});

test('a job without the "data" input is refused with E_INPUT_INVALID', async () => {
  await assert.rejects(runWorkload(app, 'reverse', {}), { code: 'E_INPUT_INVALID' });
});
`;

/**
 * Scaffold a TypeScript app in `dir` (created; refused with E_CONFLICT when it holds files):
 * src/index.ts (one workload), test/app.test.ts (node:test with `@firn/app/testing`),
 * package.json and a tsconfig.json whose paths point at this installation's SDK (for editors).
 */
export function appInitCommand(dir: string, o: { name?: string } = {}): { dir: string; files: string[] } {
  const root = resolve(dir);
  if (existsSync(root) && (!statSync(root).isDirectory() || readdirSync(root).length > 0))
    throw new FirnError('E_CONFLICT', `${root} exists and is not empty; pick a new folder`);
  const name = assertRole(
    o.name ??
      (basename(root)
        .toLowerCase()
        .replace(/[^a-z0-9_.-]/g, '-')
        .replace(/^[^a-z]+/, '') ||
        'app'),
    'app name',
  );
  const install = repoRoot();
  const files: Record<string, string> = {
    'src/index.ts': SCAFFOLD_APP.replace('__NAME__', name),
    'test/app.test.ts': SCAFFOLD_TEST,
    'package.json': `${JSON.stringify(
      {
        name,
        version: '0.1.0',
        private: true,
        type: 'module',
        scripts: { build: 'firn app build . --json', test: 'firn app test .' },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'Preserve',
          moduleResolution: 'bundler',
          allowImportingTsExtensions: true,
          noEmit: true,
          strict: true,
          types: ['node'],
          // For editors only: the build resolves @firn/app from the installation by itself.
          paths: {
            '@firn/app': [join(install, 'packages', 'app', 'src', 'index.ts')],
            '@firn/app/testing': [join(install, 'packages', 'app', 'src', 'testing.ts')],
            '*': [join(install, 'node_modules', '*')],
          },
        },
        include: ['src', 'test'],
      },
      null,
      2,
    )}\n`,
    '.gitignore': 'dist/\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    const p = join(root, ...rel.split('/'));
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, text, { flag: 'wx' });
  }
  return { dir: root, files: Object.keys(files).sort() };
}

/**
 * Run an app's tests (`test/**\/*.test.ts`) with Node's test runner: each file is bundled with the
 * app and this installation's `@firn/app` (esbuild, as the image build resolves it) into a temp
 * folder and run with `node --test`. Returns the runner's exit status (0 = all passed).
 */
export async function appTestCommand(
  dir: string,
  o: { stdio?: 'inherit' | 'pipe' } = {},
): Promise<{ status: number; files: string[]; output: string }> {
  const root = resolve(dir);
  const testDir = join(root, 'test');
  const tests = existsSync(testDir)
    ? readdirSync(testDir, { recursive: true, encoding: 'utf8' })
        .filter((f) => /\.test\.(ts|mts|js|mjs)$/.test(f))
        .sort()
    : [];
  if (tests.length === 0) throw new FirnError('E_NOT_FOUND', `no test/*.test.ts in ${root}`);
  const out = mkdtempSync(join(tmpdir(), 'firn-app-test-'));
  try {
    const builtins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
    const files: string[] = [];
    for (const t of tests) {
      const rel = `test/${t.split('\\').join('/')}`;
      const outfile = join(out, `${rel.replace(/[/\\]/g, '__')}.mjs`);
      await build({
        entryPoints: [`firn-app:${rel}`],
        absWorkingDir: repoRoot(),
        nodePaths: [join(repoRoot(), 'node_modules')],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        logLevel: 'error',
        external: builtins,
        plugins: [appSourcePlugin(root)],
        banner: {
          js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
        },
      });
      files.push(outfile);
    }
    const r = spawnSync(process.execPath, ['--test', ...files], {
      stdio: o.stdio ?? 'inherit',
      cwd: root,
      encoding: 'utf8',
      timeout: 10 * 60_000,
    });
    return { status: r.status ?? 1, files: tests, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Register `firn app` and its subcommands; returns the `app` command (others attach to it). */
export function registerApp(program: Command): Command {
  const app = program.command('app').description('build confidential apps with the firn SDK (@firn/app)');
  app
    .command('init <dir>')
    .description('scaffold a TypeScript app (a workload and its test) in a new folder')
    .option('--name <name>', 'app name (default: the folder name)')
    .option('--json', 'print the result as JSON')
    .action((dir: string, o: { name?: string; json?: boolean }) => {
      try {
        const r = appInitCommand(dir, o);
        if (o.json) printJson(r);
        else
          process.stdout.write(
            `created ${r.dir}: ${r.files.join(', ')}\nnext: firn app test ${dir} && firn app build ${dir}\n`,
          );
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
  app
    .command('build <dir>')
    .description('bundle the app with the enclave framework into an enclave image; print its measurement')
    .option('--out <dir>', 'image directory (replaced; default DIR/dist/firn-image)')
    .option(
      '--key-broker <address>',
      "pin this key broker's identity address (kms.json) in the measured image; the enclave seals under its key only",
    )
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, o: { out?: string; keyBroker?: string; json?: boolean }) => {
      try {
        const r = await appBuildCommand(dir, o);
        if (o.json) printJson(r);
        else
          process.stdout.write(
            `app ${r.app.name} ${r.app.version} (workloads: ${r.workloads.join(', ')})\nmeasurement ${r.measurement}\nimage ${r.image}\n`,
          );
      } catch (e) {
        printError(e, o.json === true);
        process.exitCode = 1;
      }
    });
  app
    .command('test <dir>')
    .description("run the app's test/*.test.ts with the local harness (@firn/app/testing), no enclave")
    .action(async (dir: string) => {
      try {
        const r = await appTestCommand(dir);
        process.exitCode = r.status;
      } catch (e) {
        printError(e, false);
        process.exitCode = 1;
      }
    });
  return app;
}
