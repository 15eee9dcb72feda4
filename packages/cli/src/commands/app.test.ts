import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appBuildCommand, appInitCommand, appTestCommand } from './app.ts';

// `firn app init` in a folder outside the repository, its scaffolded test run with the local
// harness, and `firn app build --json` of it.
const tmp = mkdtempSync(join(tmpdir(), 'firn-app-cli-'));

describe('firn app', () => {
  const dir = join(tmp, 'My App');
  it('init scaffolds a TypeScript app with a test, and refuses a folder that holds files', () => {
    const r = appInitCommand(dir);
    expect(r.files).toEqual([
      '.gitignore',
      'package.json',
      'src/index.ts',
      'test/app.test.ts',
      'tsconfig.json',
    ]);
    expect(readFileSync(join(dir, 'src', 'index.ts'), 'utf8')).toContain("name: 'my-app'");
    expect(() => appInitCommand(dir)).toThrow(expect.objectContaining({ code: 'E_CONFLICT' }));
  });

  it("test runs the app's tests with @firn/app/testing, and fails when a test fails", async () => {
    const ok = await appTestCommand(dir, { stdio: 'pipe' });
    expect(ok.status).toBe(0);
    expect(ok.output).toMatch(/# pass 2/);
    const t = join(dir, 'test', 'app.test.ts');
    writeFileSync(t, readFileSync(t, 'utf8').replace("'cba'", "'abc'"));
    const bad = await appTestCommand(dir, { stdio: 'pipe' });
    expect(bad.status).not.toBe(0);
    expect(bad.output).toMatch(/# fail 1/);
  }, 60_000);

  it('build --json prints the measurement, image, app and workloads', async () => {
    const r = await appBuildCommand(dir, { out: join(tmp, 'image') });
    expect(r.measurement).toMatch(/^0x[0-9a-f]{64}$/);
    expect(r).toMatchObject({
      image: join(tmp, 'image'),
      entry: join(tmp, 'image', 'app', 'enclave.mjs'),
      app: { name: 'my-app', version: '0.1.0' },
      workloads: ['reverse'],
    });
    // An --out that holds something other than an image is not deleted.
    writeFileSync(join(tmp, 'keep.txt'), 'x');
    await expect(appBuildCommand(dir, { out: tmp })).rejects.toMatchObject({ code: 'E_CONFLICT' });
  }, 60_000);

  it('an app that does not build or does not export an app is E_INVALID_INPUT, and leaves no image', async () => {
    const bad = join(tmp, 'bad');
    mkdirSync(join(bad, 'src'), { recursive: true });
    writeFileSync(join(bad, 'src', 'index.ts'), "import x from 'no-such-package-here';\nexport default x;\n");
    await expect(appBuildCommand(bad)).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringMatching(/no-such-package-here/),
    });
    writeFileSync(join(bad, 'src', 'index.ts'), "export default { name: 'x' };\n");
    await expect(appBuildCommand(bad)).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringMatching(/must export default defineApp/),
    });
    expect(existsSync(join(bad, 'dist', 'firn-image'))).toBe(false);
  }, 60_000);
});
