import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from 'cborg';
import { afterAll, describe, expect, it } from 'vitest';
import { NsmHelperTransport } from './evidence/nitroNsm.ts';
import { NvidiaCommandCollector } from './evidence/nvidiaCollector.ts';
import {
  applyEnclaveEnvAllowList,
  checkGuestLaunch,
  ENCLAVE_CHILD_ENV,
  GUEST_ENCLAVE_ENTRY,
  GUEST_NODE_PATH,
} from './guestLaunch.ts';

// Decision 1730. The fixed guest paths are constants; tests move them under a temp root only
// through checkGuestLaunch's in-process `fsRoot` (as environmentFromEnv's for the GPU collector).
const root = mkdtempSync(join(tmpdir(), 'firn-guest-launch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const entry = join(root, ...GUEST_ENCLAVE_ENTRY.split('/'));
const node = join(root, ...GUEST_NODE_PATH.split('/'));

describe('checkGuestLaunch: a TD or SEV-SNP enclave runs only the fixed Node with the fixed entry', () => {
  it('accepts exactly the fixed entry under the fixed Node', () => {
    for (const tee of ['tdx', 'sev-snp'])
      expect(() => checkGuestLaunch({ tee, entry, execPath: node, fsRoot: root })).not.toThrow();
  });

  it('refuses an entry or a Node binary anywhere else, naming the fixed path', () => {
    for (const tee of ['tdx', 'sev-snp']) {
      for (const other of [
        join(root, 'tmp', 'image', 'app', 'enclave.mjs'),
        `${entry}.bak`,
        join(root, 'opt', 'firn', 'image', 'app', 'worker.mjs'),
      ])
        expect(() => checkGuestLaunch({ tee, entry: other, execPath: node, fsRoot: root })).toThrow(
          expect.objectContaining({ code: 'E_IMAGE_MISMATCH', message: expect.stringContaining(entry) }),
        );
      for (const other of [process.execPath, join(root, 'usr', 'local', 'bin', 'node')])
        expect(() => checkGuestLaunch({ tee, entry, execPath: other, fsRoot: root })).toThrow(
          expect.objectContaining({ code: 'E_IMAGE_MISMATCH', message: expect.stringContaining(node) }),
        );
    }
    // Without the seam the paths are the guest's own.
    expect(() => checkGuestLaunch({ tee: 'tdx', entry, execPath: node })).toThrow(GUEST_ENCLAVE_ENTRY);
  });

  it('leaves the TEEs that measure the image alone', () => {
    for (const tee of ['simulated', 'sgx-gramine', 'nitro', undefined])
      expect(() =>
        checkGuestLaunch({ tee, entry: '/tmp/x/app/enclave.mjs', execPath: '/tmp/node' }),
      ).not.toThrow();
  });
});

describe('applyEnclaveEnvAllowList: an allow-list, not a deny-list', () => {
  const listed = { FIRN_TEE: 'tdx', FIRN_KMS_URL: 'http://kms.example:7400', FIRN_LOG_LEVEL: 'debug' };

  it('a TD or SEV-SNP enclave refuses any other variable, PATH included, naming it but not its value', () => {
    for (const tee of ['tdx', 'sev-snp'])
      for (const name of ['PATH', 'OPENSSL_CONF', 'TZ', 'TMPDIR', 'HOME', 'FIRN_GPU_COLLECTOR']) {
        const env: NodeJS.ProcessEnv = { ...listed, FIRN_TEE: tee, [name]: '/tmp/host-secret-value' };
        let err: unknown;
        try {
          applyEnclaveEnvAllowList(env, tee);
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'E_IMAGE_MISMATCH', message: expect.stringContaining(name) });
        expect((err as Error).message).not.toContain('host-secret-value');
      }
    const env: NodeJS.ProcessEnv = { ...listed };
    expect(applyEnclaveEnvAllowList(env, 'tdx')).toEqual([]);
    expect(env).toEqual(listed);
  });

  it('elsewhere drops what is off the list (and off the TEE measured configuration) before anything reads it', () => {
    const sim: NodeJS.ProcessEnv = {
      FIRN_TEE: 'simulated',
      FIRN_SIM_PLATFORM: '/p.json',
      PATH: '/host/bin',
      TMPDIR: '/host/tmp',
      AWS_SECRET_ACCESS_KEY: 'x',
    };
    expect(applyEnclaveEnvAllowList(sim, 'simulated').sort()).toEqual([
      'AWS_SECRET_ACCESS_KEY',
      'PATH',
      'TMPDIR',
    ]);
    expect(sim).toEqual({ FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: '/p.json' });
    const gramine: NodeJS.ProcessEnv = {
      FIRN_TEE: 'sgx-gramine',
      LD_LIBRARY_PATH: '/lib',
      FIRN_DATA_DIR: '/data',
      PATH: '/bin',
    };
    applyEnclaveEnvAllowList(gramine, 'sgx-gramine');
    expect(gramine).toEqual({ FIRN_TEE: 'sgx-gramine', LD_LIBRARY_PATH: '/lib', FIRN_DATA_DIR: '/data' });
    const nitro: NodeJS.ProcessEnv = {
      FIRN_TEE: 'nitro',
      FIRN_NSM_HELPER: '["/h"]',
      PATH: '/bin',
      HOME: '/',
    };
    applyEnclaveEnvAllowList(nitro, 'nitro');
    expect(nitro).toEqual({ FIRN_TEE: 'nitro', FIRN_NSM_HELPER: '["/h"]' });
  });
});

describe('every program the enclave starts gets the fixed environment, nothing of the enclave process', () => {
  const envOfChild = join(root, 'env-of-child.cjs');
  writeFileSync(
    envOfChild,
    `const env = JSON.stringify(process.env);
if (process.argv[2] === 'nsm') { process.stdin.resume(); process.stdin.on('end', () => process.stdout.write(env)); }
else process.stdout.write(JSON.stringify([{ arch: 'HOPPER', nonce: process.argv[2], evidence: env, certificate: 'c' }]));
`,
  );

  it('the GPU collector and the NSM helper see ENCLAVE_CHILD_ENV only', async () => {
    process.env.FIRN_TEST_HOST_SECRET = 'must-not-reach-a-child';
    const prevPath = process.env.PATH;
    process.env.PATH = `/tmp/host-bin:${prevPath}`;
    try {
      const [gpu] = await new NvidiaCommandCollector({ command: [process.execPath, envOfChild] }).collect(
        new Uint8Array(32),
      );
      expect(JSON.parse(gpu!.evidence)).toEqual(ENCLAVE_CHILD_ENV);
      const nsm = await new NsmHelperTransport({
        command: [process.execPath, envOfChild, 'nsm'],
        device: '/dev/nsm',
      }).request(encode({}));
      expect(JSON.parse(Buffer.from(nsm).toString('utf8'))).toEqual(ENCLAVE_CHILD_ENV);
    } finally {
      delete process.env.FIRN_TEST_HOST_SECRET;
      process.env.PATH = prevPath;
    }
  });
});
