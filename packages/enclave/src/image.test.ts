import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  ENCLAVE_IMAGE_FORMAT,
  type EnclaveImageManifest,
  enclaveImageDigest,
  hashFile,
  MAX_IMAGE_MANIFEST_BYTES,
  parseEnclaveImageManifest,
  verifyEnclaveImage,
} from './image.ts';

// The manifest parser and the start-up check on a small hand-made image (the real image is
// built and attacked in packages/node/src/enclaveImage.test.ts).
const h = (n: number) => bytesToHex(new Uint8Array(32).fill(n));
const base: EnclaveImageManifest = {
  format: ENCLAVE_IMAGE_FORMAT,
  entry: 'app/enclave.mjs',
  node: { version: 'v20.19.0', platform: 'linux', arch: 'x64', sha256: h(9), size: 10 },
  files: [
    { path: 'app/enclave.mjs', sha256: h(1), size: 1 },
    { path: 'ort/libonnxruntime.so.1', sha256: h(2), size: 2 },
  ],
};
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('parseEnclaveImageManifest', () => {
  it('accepts a well-formed manifest and refuses traversal, disorder, duplicates, unknown fields and oversize', () => {
    expect(parseEnclaveImageManifest(enc(base))).toEqual(base);
    const bad: unknown[] = [
      { ...base, files: [{ path: '../etc/passwd', sha256: h(1), size: 1 }, ...base.files] },
      { ...base, files: [{ path: '/abs', sha256: h(1), size: 1 }] },
      { ...base, files: [...base.files].reverse() },
      { ...base, files: [base.files[0], base.files[0]] },
      { ...base, files: [{ ...base.files[0], sha256: '0x12' }] },
      { ...base, entry: 'app/other.mjs' },
      { ...base, extra: 1 },
      { ...base, format: 'firn/enclave-image/v0' },
      { ...base, node: { ...base.node, version: 'v20 ; rm -rf' } },
    ];
    for (const b of bad) expect(code(() => parseEnclaveImageManifest(enc(b)))).toBe('E_IMAGE_MISMATCH');
    expect(code(() => parseEnclaveImageManifest(new Uint8Array(MAX_IMAGE_MANIFEST_BYTES + 1)))).toBe(
      'E_IMAGE_MISMATCH',
    );
  });

  it('has a digest that changes with every file hash, size, path and the Node binary', () => {
    const d = bytesToHex(enclaveImageDigest(base));
    const variants: EnclaveImageManifest[] = [
      { ...base, files: [base.files[0]!, { ...base.files[1]!, sha256: h(3) }] },
      { ...base, files: [base.files[0]!, { ...base.files[1]!, size: 3 }] },
      { ...base, files: [base.files[0]!, { ...base.files[1]!, path: 'ort/libonnxruntime.so.2' }] },
      { ...base, node: { ...base.node, sha256: h(8) } },
      { ...base, node: { ...base.node, version: 'v22.0.0' } },
    ];
    for (const v of variants) expect(bytesToHex(enclaveImageDigest(v))).not.toBe(d);
  });

  it('measures the app section (1090): a developer app cannot claim the first-party flag or add a workload unmeasured', () => {
    const app = { name: 'firn-ml', version: '1.0.0', workloads: ['inference', 'training'], firstParty: true };
    const withApp: EnclaveImageManifest = { ...base, app };
    expect(parseEnclaveImageManifest(enc(withApp))).toEqual(withApp);
    const d = bytesToHex(enclaveImageDigest(withApp));
    expect(d).not.toBe(bytesToHex(enclaveImageDigest(base)));
    const variants: EnclaveImageManifest[] = [
      { ...base, app: { ...app, firstParty: false } },
      { ...base, app: { ...app, name: 'firn-mm' } },
      { ...base, app: { ...app, version: '1.0.1' } },
      { ...base, app: { ...app, workloads: ['inference'] } },
      { ...base, app: { ...app, workloads: ['inference', 'training', 'zz'] } },
    ];
    for (const v of variants) expect(bytesToHex(enclaveImageDigest(v))).not.toBe(d);
    const bad: unknown[] = [
      { ...base, app: { ...app, firstParty: 'yes' } },
      { ...base, app: { ...app, extra: 1 } },
      { ...base, app: { ...app, workloads: ['training', 'inference'] } },
      { ...base, app: { ...app, workloads: [] } },
      { ...base, app: { ...app, workloads: ['Inference'] } },
      { ...base, app: { ...app, name: '../x' } },
      {
        ...base,
        app: { ...app, workloads: Array.from({ length: 65 }, (_, i) => `w${String(i).padStart(2, '0')}`) },
      },
    ];
    for (const b of bad) expect(code(() => parseEnclaveImageManifest(enc(b)))).toBe('E_IMAGE_MISMATCH');
  });

  it('measures the pinned key broker (1710): another broker, or none, is another digest', () => {
    const a = `0x${'11'.repeat(20)}` as const;
    const pinned: EnclaveImageManifest = { ...base, keyBroker: { address: a } };
    expect(
      parseEnclaveImageManifest(
        enc({ ...base, keyBroker: { address: a.toUpperCase().replace('0X', '0x') } }),
      ),
    ).toEqual(pinned);
    const d = bytesToHex(enclaveImageDigest(pinned));
    expect(d).not.toBe(bytesToHex(enclaveImageDigest(base)));
    expect(d).not.toBe(
      bytesToHex(enclaveImageDigest({ ...base, keyBroker: { address: `0x${'12'.repeat(20)}` } })),
    );
    const bad: unknown[] = [
      { ...base, keyBroker: {} },
      { ...base, keyBroker: { address: '0x1234' } },
      { ...base, keyBroker: { address: a, url: 'http://x' } },
      { ...base, keyBroker: a },
    ];
    for (const b of bad) expect(code(() => parseEnclaveImageManifest(enc(b)))).toBe('E_IMAGE_MISMATCH');
  });
});

describe('verifyEnclaveImage', () => {
  function image(): string {
    const dir = mkdtempSync(join(tmpdir(), 'firn-img-'));
    mkdirSync(join(dir, 'app'));
    writeFileSync(join(dir, 'app', 'enclave.mjs'), 'export {};');
    const m: EnclaveImageManifest = {
      ...base,
      node: {
        version: process.version,
        platform: process.platform,
        arch: process.arch,
        ...hashFile(process.execPath),
      },
      files: [{ path: 'app/enclave.mjs', ...hashFile(join(dir, 'app', 'enclave.mjs')) }],
    };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    return dir;
  }

  it('passes an intact image and fails a changed file, a planted file or link, a missing file, another Node', () => {
    expect(code(() => verifyEnclaveImage(image()))).toBe('ok');
    const changed = image();
    writeFileSync(join(changed, 'app', 'enclave.mjs'), 'export {}; // host code');
    expect(code(() => verifyEnclaveImage(changed))).toBe('E_IMAGE_MISMATCH');
    const planted = image();
    writeFileSync(join(planted, 'app', 'preload.so'), 'x');
    expect(code(() => verifyEnclaveImage(planted))).toBe('E_IMAGE_MISMATCH');
    const linked = image();
    symlinkSync('/etc/hostname', join(linked, 'app', 'link'));
    expect(code(() => verifyEnclaveImage(linked))).toBe('E_IMAGE_MISMATCH');
    expect(code(() => verifyEnclaveImage(mkdtempSync(join(tmpdir(), 'firn-img-empty-'))))).toBe(
      'E_IMAGE_MISMATCH',
    );
    expect(code(() => verifyEnclaveImage(image(), { nodeVersion: 'v0.0.1' }))).toBe('E_IMAGE_MISMATCH');
    expect(
      code(() => verifyEnclaveImage(image(), { nodeExecPath: join(image(), 'app', 'enclave.mjs') })),
    ).toBe('E_IMAGE_MISMATCH');
  });
});
