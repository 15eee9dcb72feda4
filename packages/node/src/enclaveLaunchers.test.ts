import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certificateDer, DEV_POLICY, dcapSelfIdentity } from '@firn/attestation';
import {
  createSimulatedPlatform,
  createSimulatedRoot,
  createSimulatedGpu,
  createSimulatedGpuRoot,
} from '@firn/sim';
import { bytesToHex, measurementDigest } from '@firn/core';
import { GUEST_ENCLAVE_ENTRY, GUEST_NODE_PATH } from '@firn/enclave';
import { KmsDaemon } from '@firn/kms';
import { parse } from 'smol-toml';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveBundle } from './enclaveBundle.ts';
import {
  checkEnclaveEnv,
  type EnclaveEnvName,
  EnclaveSupervisor,
  enclaveEnvFromHost,
} from './enclaveSupervisor.ts';
import {
  GRAMINE_DATA_MOUNT,
  GRAMINE_IMAGE_MOUNT,
  GRAMINE_NODE_MOUNT,
  generateGramineManifest,
  prepareGramineLaunch,
} from './gramineManifest.ts';
import { createLogger } from './logger.ts';

/**
 * The launchers with real enclave processes: the plain-node launcher (simulated TEE, key from the
 * key broker) and the gramine-sgx launcher, where a fake `gramine-sgx` (and `gramine-sgx-sign`),
 * found on PATH, records its argv and environment, checks every hash-pinned trusted file as
 * Gramine would, and runs the image's entry with the manifest's environment over a fake
 * /dev/attestation holding a captured REAL SGX quote. Not covered: real SGX hardware and Gramine itself (EPC, MRENCLAVE
 * computation, the encrypted mount, a quote binding the written report data).
 */
const FIX = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'enclave',
  'src',
  'evidence',
  'fixtures',
);
const SGX_QUOTE = readFileSync(join(FIX, 'sgx_quote.bin'));
const dir = mkdtempSync(join(tmpdir(), 'firn-launch-'));
const bundle = await buildEnclaveBundle(join(dir, 'enclave.mjs'));
const image = bundle.image;
const logs: string[] = [];
const logger = createLogger({}, { write: (l) => logs.push(l) });
const sups: EnclaveSupervisor[] = [];
const daemons: KmsDaemon[] = [];
afterAll(async () => {
  for (const s of sups) await s.stop();
  for (const d of daemons) await d.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Identity {
  enclaveId: string;
  enclaveAddress: string;
  measurement: string;
  sealedKeys: unknown;
}

/**
 * Stands in for Gramine's /dev/attestation in the fake gramine-sgx below: redirects that folder to
 * FS_ROOT/dev/attestation for the enclave's fs/promises calls, then imports the entry (argv[2]).
 */
const DEV_ATTESTATION_SHIM = `import { syncBuiltinESMExports } from 'node:module';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
const require = createRequire(import.meta.url);
const fsp = require('node:fs/promises');
const map = (p) => (typeof p === 'string' && p.startsWith('/dev/attestation/') ? FS_ROOT + p : p);
const { readFile, writeFile } = fsp;
fsp.readFile = (p, ...r) => readFile(map(p), ...r);
fsp.writeFile = (p, ...r) => writeFile(map(p), ...r);
syncBuiltinESMExports();
process.argv.splice(1, 1);
await import(pathToFileURL(process.argv[1]).href);
`;

describe('enclave environment allow-list', () => {
  it('refuses variables off the list, oversize values and NUL bytes', () => {
    expect(() => checkEnclaveEnv({ AWS_SECRET_ACCESS_KEY: 'x' })).toThrow(/not on the allow-list/);
    expect(() => checkEnclaveEnv({ FIRN_TEE: 'x'.repeat(5000) })).toThrow(/4 KiB/);
    expect(() => checkEnclaveEnv({ FIRN_TEE: 'a\0b' })).toThrow(/4 KiB/);
    expect(
      () => new EnclaveSupervisor({ bundlePath: bundle.path, env: { LD_PRELOAD: '/tmp/x.so' }, logger }),
    ).toThrow(/LD_PRELOAD/);
  });

  it('passes the configured variables only (not even PATH); the host environment stays behind', () => {
    process.env.FIRN_TEST_HOST_SECRET = 'must-not-leak';
    const sup = new EnclaveSupervisor({
      bundlePath: bundle.path,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: '/x' },
      logger,
    });
    const cmd = sup.command();
    expect(Object.keys(cmd.env).sort()).toEqual(['FIRN_SIM_PLATFORM', 'FIRN_TEE']);
    expect(cmd.file).toBe(process.execPath);
    expect(cmd.args).toEqual([bundle.path]);
    expect(
      enclaveEnvFromHost({
        FIRN_LOG_LEVEL: 'debug',
        FIRN_GPU_COLLECTOR: '["x"]',
        HOME: '/root',
        FIRN_OTHER: '1',
      }),
    ).toEqual({ FIRN_LOG_LEVEL: 'debug' });
  });

  it('a TD or SEV-SNP guest starts only the fixed Node with the fixed entry, without PATH (decision 1730)', () => {
    const prev = process.env.PATH;
    process.env.PATH = `/tmp/host-bin:${prev}`;
    try {
      for (const tee of ['tdx', 'sev-snp']) {
        const env = { FIRN_TEE: tee, FIRN_KMS_URL: 'http://kms.example:7400' };
        const cmd = new EnclaveSupervisor({ bundlePath: GUEST_ENCLAVE_ENTRY, env, logger }).command();
        expect(cmd).toEqual({ file: GUEST_NODE_PATH, args: [GUEST_ENCLAVE_ENTRY], env });
        for (const bundlePath of [bundle.path, `${GUEST_ENCLAVE_ENTRY}/../../x/app/enclave.mjs`])
          expect(() => new EnclaveSupervisor({ bundlePath, env, logger })).toThrow(
            expect.objectContaining({
              code: 'E_INVALID_INPUT',
              message: expect.stringContaining(GUEST_ENCLAVE_ENTRY),
            }),
          );
        expect(
          () =>
            new EnclaveSupervisor({
              bundlePath: GUEST_ENCLAVE_ENTRY,
              env,
              logger,
              launcher: { kind: 'gramine-sgx', manifestDir: dir, name: 'x' },
            }),
        ).toThrow(/not Gramine/);
      }
    } finally {
      process.env.PATH = prev;
    }
  });

  it('refuses every variable that would choose code, a key source or a filesystem root (decision 1712)', () => {
    for (const name of ['FIRN_GPU_COLLECTOR', 'FIRN_KMS_ADDRESS', 'FIRN_FS_ROOT', 'FIRN_NSM_HELPER'])
      expect(() => checkEnclaveEnv({ [name]: '["/bin/sh"]' })).toThrow(/not on the allow-list/);
  });
});

describe('node launcher: simulated TEE with its sealing key from the key broker', () => {
  it('configured variables arrive (simulated GPUs, key broker) and the key unseals across restarts', async () => {
    const root = await createSimulatedRoot();
    const platformPath = join(dir, 'platform.json');
    writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(root)));
    const gpuRoot = await createSimulatedGpuRoot();
    const gpu = await createSimulatedGpu({
      root: gpuRoot,
      driverVersion: '570.124.06',
      vbiosVersion: '96.00.9F.00.04',
    });
    const gpuPath = join(dir, 'gpus.json');
    writeFileSync(gpuPath, JSON.stringify([gpu.state]));
    const kmsPlatform = await createSimulatedPlatform(root);
    const broker = (measurement: Uint8Array) =>
      new KmsDaemon({
        dataDir: join(dir, 'kms'),
        platform: kmsPlatform,
        policy: { ...DEV_POLICY, measurementAllowList: [bytesToHex(measurement)] },
        roots: { simulated: [certificateDer(root.certificatePem)] },
        logger,
      });
    // The broker's identity is pinned in the measured image (decision 1710): learn it, build an
    // image pinning it, and run the broker (same sealed master, same address) for that image.
    const first0 = broker(bundle.measurement);
    const { address } = await first0.start();
    await first0.stop();
    const pinned = await buildEnclaveBundle(join(dir, 'pinned', 'enclave.mjs'), { keyBroker: address });
    expect(pinned.image.manifest.keyBroker).toEqual({ address });
    expect(bytesToHex(pinned.measurement)).not.toBe(bytesToHex(bundle.measurement));
    const kms = broker(pinned.measurement);
    daemons.push(kms);
    const info = await kms.start();
    expect(info.address).toBe(address);
    // The unpinned image ignores a broker URL from the host: it seals with its platform key.
    const unpinned = new EnclaveSupervisor({
      bundlePath: bundle.path,
      env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath, FIRN_KMS_URL: info.url },
      logger,
    });
    sups.push(unpinned);
    unpinned.start();
    await unpinned.ready();
    await unpinned.call<Identity>('init', {});
    expect(logs.some((l) => l.includes('sealing key released'))).toBe(false);
    const sup = new EnclaveSupervisor({
      bundlePath: pinned.path,
      env: {
        FIRN_TEE: 'simulated',
        FIRN_SIM_PLATFORM: platformPath,
        FIRN_SIM_GPUS: gpuPath,
        FIRN_KMS_URL: info.url,
      },
      logger,
    });
    sups.push(sup);
    sup.start();
    await sup.ready();
    const first = await sup.call<Identity>('init', {});
    expect(first.measurement).toBe(bytesToHex(pinned.measurement));
    // The enclave asked the pinned broker (FIRN_KMS_URL arrived) and was released a key for its measurement.
    expect(logs.some((l) => l.includes('sealing key released') && l.includes(first.measurement))).toBe(true);
    // FIRN_SIM_GPUS arrived: the evidence is composite.
    const ev = await sup.call<{ gpu?: unknown[] }>('attest', { nonce: `0x${'ab'.repeat(32)}` });
    expect(ev.gpu).toHaveLength(1);
    const restarted = new Promise((r) => sup.once('restarted', r));
    process.kill(sup.pid!, 'SIGKILL');
    await restarted;
    await sup.ready();
    const again = await sup.call<Identity>('init', { sealedKeys: first.sealedKeys });
    expect(again.enclaveAddress).toBe(first.enclaveAddress);
    // With the broker gone, a restarted enclave cannot open its keys: there is no key on disk to fall back to.
    await kms.stop();
    const down = new Promise((r) => sup.once('restarted', r));
    process.kill(sup.pid!, 'SIGKILL');
    await down;
    await sup.ready();
    await expect(sup.call('init', { sealedKeys: first.sealedKeys })).rejects.toMatchObject({
      code: 'E_UNAVAILABLE',
    });
  }, 180_000);
});

describe('gramine-sgx launcher', () => {
  const gramine = {
    libos: join(dir, 'gramine', 'libsysdb.so'),
    runtime: join(dir, 'gramine', 'runtime'),
    lib: join(dir, 'syslib'),
  };
  mkdirSync(gramine.runtime, { recursive: true });
  mkdirSync(gramine.lib, { recursive: true });
  writeFileSync(gramine.libos, 'libos');
  const opts = {
    image,
    gramineLibos: gramine.libos,
    gramineRuntimeDir: gramine.runtime,
    libDirs: [gramine.lib],
  };

  it('generates a manifest where every image file is trusted with its hash and the data dir is encrypted', () => {
    const { text } = generateGramineManifest({ ...opts, passthroughEnv: ['FIRN_LOG_LEVEL'] });
    // biome-ignore lint/suspicious/noExplicitAny: the test walks the parsed TOML tree
    const m = parse(text) as Record<string, any>;
    expect(m.libos.entrypoint).toBe(GRAMINE_NODE_MOUNT);
    expect(m.loader.entrypoint).toBe(`file:${gramine.libos}`);
    expect(m.loader.argv).toEqual(['node', `${GRAMINE_IMAGE_MOUNT}/${image.manifest.entry}`]);
    expect(m.sgx.remote_attestation).toBe('dcap');
    expect(m.sgx.debug).toBe(false);
    expect(m.sgx.allowed_files).toBeUndefined();
    expect(text).not.toMatch(/allowed_files|insecure__use_host_env|insecure__use_cmdline_argv/);
    const pinned = new Map(
      (m.sgx.trusted_files as unknown[])
        .filter((t): t is { uri: string; sha256: string } => typeof t === 'object')
        .map((t) => [t.uri, t.sha256]),
    );
    for (const f of image.files) expect(pinned.get(`file:image/${f.path}`)).toBe(f.sha256.slice(2));
    expect(pinned.get('file:node')).toBe(image.manifest.node.sha256.slice(2));
    expect(pinned.has('file:image/manifest.json')).toBe(true);
    const data = (m.fs.mounts as Record<string, string>[]).find((x) => x.path === GRAMINE_DATA_MOUNT)!;
    expect(data).toMatchObject({ type: 'encrypted', uri: 'file:data', key_name: '_sgx_mrenclave' });
    // Every mount that is not tmpfs or encrypted is read-only in practice: covered by trusted files.
    const trustedDirs = (m.sgx.trusted_files as unknown[]).filter((t): t is string => typeof t === 'string');
    expect(trustedDirs).toEqual([
      `file:${gramine.libos}`,
      `file:${gramine.runtime}/`,
      `file:${gramine.lib}/`,
    ]);
    // FIRN_TEE is fixed; the host passes only the log level; FIRN_FS_ROOT can never be passed.
    expect(m.loader.env.FIRN_TEE).toBe('sgx-gramine');
    expect(m.loader.env.FIRN_LOG_LEVEL).toEqual({ passthrough: true });
    expect(m.loader.env.FIRN_FS_ROOT).toBeUndefined();
    expect(() =>
      generateGramineManifest({ ...opts, passthroughEnv: ['FIRN_FS_ROOT' as EnclaveEnvName] }),
    ).toThrow(/may not pass/);
  });

  it('refuses to launch with a Node binary other than the one the image pins', async () => {
    const other = join(dir, 'not-node');
    writeFileSync(other, 'x');
    await expect(
      prepareGramineLaunch({
        ...opts,
        dataDir: join(dir, 'n0'),
        nodePath: other,
        signExecutable: '/bin/true',
      }),
    ).rejects.toMatchObject({ code: 'E_IMAGE_MISMATCH' });
  });

  it('fails typed when Gramine is not installed (no gramine-sgx-sign, no gramine-sgx)', async () => {
    await expect(
      prepareGramineLaunch({ ...opts, dataDir: join(dir, 'n1'), signExecutable: join(dir, 'no-such-sign') }),
    ).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    const sup = new EnclaveSupervisor({
      bundlePath: bundle.path,
      env: { FIRN_TEE: 'sgx-gramine' },
      launcher: {
        kind: 'gramine-sgx',
        manifestDir: dir,
        name: 'firn-enclave',
        executable: join(dir, 'no-such-gramine'),
      },
      logger,
    });
    sups.push(sup);
    sup.start();
    await expect(sup.ready(1000)).rejects.toMatchObject({ code: 'E_ENCLAVE_UNAVAILABLE' });
    expect(logs.some((l) => l.includes('enclave launcher failed to start') && l.includes('ENOENT'))).toBe(
      true,
    );
  });

  it('signs, then runs gramine-sgx with the allow-listed environment; the enclave names itself from the SGX quote', async () => {
    // Fake device tree: what Gramine exposes under /dev/attestation (captured real quote).
    const fsRoot = join(dir, 'fs');
    mkdirSync(join(fsRoot, 'dev', 'attestation', 'keys'), { recursive: true });
    writeFileSync(join(fsRoot, 'dev', 'attestation', 'quote'), SGX_QUOTE);
    writeFileSync(join(fsRoot, 'dev', 'attestation', 'user_report_data'), Buffer.alloc(64));
    writeFileSync(join(fsRoot, 'dev', 'attestation', 'keys', '_sgx_mrenclave'), Buffer.alloc(16, 7));
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const record = join(dir, 'gramine-record.json');
    const signRecord = join(dir, 'sign-record.json');
    const tomlUrl = import.meta.resolve('smol-toml');
    const wrap = (name: string, js: string) => {
      writeFileSync(join(bin, `${name}.mjs`), js);
      writeFileSync(
        join(bin, name),
        `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(bin, `${name}.mjs`))} "$@"\n`,
      );
      chmodSync(join(bin, name), 0o755);
    };
    wrap(
      'gramine-sgx-sign',
      `import { copyFileSync, writeFileSync } from 'node:fs';
const a = process.argv.slice(2);
writeFileSync(${JSON.stringify(signRecord)}, JSON.stringify({ argv: a, cwd: process.cwd() }));
copyFileSync(a[a.indexOf('--manifest') + 1], a[a.indexOf('--output') + 1]);
writeFileSync('firn-enclave.sig', 'sig');
`,
    );
    wrap(
      'gramine-sgx',
      `import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from ${JSON.stringify(tomlUrl)};
const name = process.argv[2];
writeFileSync(${JSON.stringify(record)}, JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd(), env: process.env }));
const m = parse(readFileSync(name + '.manifest.sgx', 'utf8'));
// As Gramine does: a trusted file whose bytes differ from its pinned hash is refused.
for (const t of m.sgx.trusted_files) {
  if (typeof t !== 'object') continue;
  const h = createHash('sha256').update(readFileSync(resolve(t.uri.slice(5)))).digest('hex');
  if (h !== t.sha256) { process.stderr.write('trusted file mismatch ' + t.uri + '\\n'); process.exit(3); }
}
const host = (p) => {
  for (const mt of m.fs.mounts)
    if (!mt.type && (p === mt.path || p.startsWith(mt.path + '/'))) return resolve(mt.uri.slice(5)) + p.slice(mt.path.length);
  return p;
};
const env = {};
for (const [k, v] of Object.entries(m.loader.env))
  if (typeof v === 'string') env[k] = v;
  else if (v.passthrough && process.env[k] !== undefined) env[k] = process.env[k];
// Gramine's /dev/attestation: a shim (the main script, no Node option) maps it to a test folder
// and then runs the entry. The enclave takes no path from its environment (decision 1712).
const shim = ${JSON.stringify(join(dir, 'dev-attestation-shim.mjs'))};
writeFileSync(shim, ${JSON.stringify(DEV_ATTESTATION_SHIM)}.replace('FS_ROOT', JSON.stringify(${JSON.stringify(fsRoot)})));
// One process in real Gramine: when gramine-sgx dies, so does the enclave (its stdin closes).
const child = spawn(host(m.libos.entrypoint), [shim, ...m.loader.argv.slice(1).map(host)], { env, stdio: ['pipe', 'inherit', 'inherit'] });
process.stdin.pipe(child.stdin);
child.on('exit', (c) => process.exit(c ?? 1));
`,
    );
    const dataDir = join(dir, 'node-sgx');
    // The fakes are found on PATH, as the real tools would be.
    process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
    const launcher = await prepareGramineLaunch({
      ...opts,
      dataDir,
    });
    const signed = JSON.parse(readFileSync(signRecord, 'utf8'));
    expect(signed.argv).toEqual([
      '--manifest',
      'firn-enclave.manifest',
      '--output',
      'firn-enclave.manifest.sgx',
    ]);
    expect(signed.cwd).toBe(join(dataDir, 'gramine'));

    process.env.FIRN_TEST_HOST_SECRET = 'must-not-leak';
    const sup = new EnclaveSupervisor({
      bundlePath: bundle.path,
      env: { FIRN_TEE: 'sgx-gramine', FIRN_LOG_LEVEL: 'info' },
      launcher,
      logger,
    });
    sups.push(sup);
    sup.start();
    await sup.ready();
    const rec = JSON.parse(readFileSync(record, 'utf8'));
    expect(sup.command().file).toBe('gramine-sgx');
    expect(rec.argv).toEqual(['firn-enclave']);
    expect(rec.cwd).toBe(join(dataDir, 'gramine'));
    expect(rec.env.FIRN_LOG_LEVEL).toBe('info');
    expect(rec.env.FIRN_TEE).toBe('sgx-gramine');
    expect(rec.env.FIRN_TEST_HOST_SECRET).toBeUndefined();

    const self = dcapSelfIdentity(SGX_QUOTE);
    const first = await sup.call<Identity>('init', {});
    expect(first.measurement).toBe(bytesToHex(measurementDigest('sgx', self.registers)));
    const ev = await sup.call<{ teeType: string; quote: string }>('attest', {
      nonce: `0x${'cd'.repeat(32)}`,
    });
    expect(ev.teeType).toBe('sgx');
    expect(ev.quote).toBe(bytesToHex(SGX_QUOTE));
    // The report data the enclave asked Gramine to quote arrived at /dev/attestation.
    expect(readFileSync(join(fsRoot, 'dev', 'attestation', 'user_report_data'))).toHaveLength(64);
    // Restart (gramine-sgx killed): the MRENCLAVE sealing key opens the same keys.
    const restarted = new Promise((r) => sup.once('restarted', r));
    process.kill(sup.pid!, 'SIGKILL');
    await restarted;
    await sup.ready();
    const again = await sup.call<Identity>('init', { sealedKeys: first.sealedKeys });
    expect(again.enclaveAddress).toBe(first.enclaveAddress);
  }, 60_000);
});
