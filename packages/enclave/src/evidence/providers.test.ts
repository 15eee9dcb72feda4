import { hkdfSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedPath, TAGS } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { GramineEvidenceProvider } from './gramine.ts';
import { NvidiaCommandCollector } from './nvidiaCollector.ts';
import { fakeTsmKernel } from '../../test/fakeTsmKernel.ts';
import { TdxConfigfsEvidenceProvider } from './tdxConfigfs.ts';

// Fake filesystem trees built from captured REAL quotes (fixtures/SOURCE.md). Not covered: a real
// Gramine or kernel producing a quote for the written report data, and concurrency on real configfs.
const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const SGX = readFileSync(join(FIX, 'sgx_quote.bin'));
const TDX = readFileSync(join(FIX, 'tdx_quote.bin'));
const rd = new Uint8Array(64).map((_, i) => i);

describe('GramineEvidenceProvider', () => {
  function tree() {
    const root = mkdtempSync(join(tmpdir(), 'firn-gramine-'));
    mkdirSync(join(root, 'dev', 'attestation', 'keys'), { recursive: true });
    writeFileSync(join(root, 'dev', 'attestation', 'quote'), SGX);
    return root;
  }
  it('writes the 64 report-data bytes and returns the quote unchanged', async () => {
    const root = tree();
    const p = new GramineEvidenceProvider({ root });
    const { quote } = await p.quote(rd);
    expect(Buffer.from(quote).equals(SGX)).toBe(true);
    expect(
      Buffer.from(readFileSync(join(root, 'dev', 'attestation', 'user_report_data'))).equals(Buffer.from(rd)),
    ).toBe(true);
    await expect(p.quote(new Uint8Array(32))).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
  });
  it('derives a 32-byte tagged sealing key from the 16-byte MRENCLAVE key', async () => {
    const root = tree();
    const raw = Buffer.alloc(16, 0xab);
    writeFileSync(join(root, 'dev', 'attestation', 'keys', '_sgx_mrenclave'), raw);
    const k = await new GramineEvidenceProvider({ root }).sealingKey();
    expect(Buffer.from(k).toString('hex')).toBe(
      Buffer.from(hkdfSync('sha256', raw, new Uint8Array(0), TAGS.gramineSealKey, 32)).toString('hex'),
    );
    writeFileSync(join(root, 'dev', 'attestation', 'keys', '_sgx_mrenclave'), Buffer.alloc(15));
    await expect(new GramineEvidenceProvider({ root }).sealingKey()).rejects.toMatchObject({
      code: 'E_SEAL',
    });
  });
  it('outside Gramine it fails with a typed error', async () => {
    const p = new GramineEvidenceProvider({ root: mkdtempSync(join(tmpdir(), 'firn-none-')) });
    await expect(p.quote(rd)).rejects.toMatchObject({ code: 'E_ENCLAVE_UNAVAILABLE' });
  });
});

describe('TdxConfigfsEvidenceProvider', () => {
  // An in-memory configfs-tsm (test/fakeTsmKernel.ts): mkdir creates an entry with
  // provider/generation/outblob, every write bumps generation (as the kernel ABI documents), rmdir
  // removes the entry.
  const fakeKernel = (provider = 'tdx_guest', racer = false) =>
    fakeTsmKernel(TDX, { provider, concurrentWriter: racer });
  it('writes the report data to inblob, returns outblob unchanged and removes its entry', async () => {
    const k = fakeKernel();
    let seen: Uint8Array | undefined;
    const write = k.writeFile;
    k.writeFile = async (p, d) => {
      seen = d;
      return write(p, d);
    };
    const { quote } = await new TdxConfigfsEvidenceProvider({ root: '/', fs: k }).quote(rd);
    expect(Buffer.from(quote).equals(TDX)).toBe(true);
    expect(seen && Buffer.from(seen).equals(Buffer.from(rd))).toBe(true);
    expect(k.entries.size).toBe(0);
  });
  it('refuses a concurrent writer (generation moved by more than one) and another provider', async () => {
    await expect(
      new TdxConfigfsEvidenceProvider({ fs: fakeKernel('tdx_guest', true) }).quote(rd),
    ).rejects.toMatchObject({ code: 'E_CONFLICT' });
    await expect(
      new TdxConfigfsEvidenceProvider({ fs: fakeKernel('sev_guest') }).quote(rd),
    ).rejects.toMatchObject({ code: 'E_ENCLAVE_UNAVAILABLE' });
  });
  it('works against a real directory tree and fails typed without configfs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'firn-tdx-'));
    await expect(new TdxConfigfsEvidenceProvider({ root }).quote(rd)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    mkdirSync(join(root, 'sys', 'kernel', 'config', 'tsm', 'report'), { recursive: true });
    // A plain directory has no provider file: refused, not mistaken for a TDX guest.
    await expect(new TdxConfigfsEvidenceProvider({ root }).quote(rd)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    expect(readdirSync(join(root, 'sys', 'kernel', 'config', 'tsm', 'report'))).toHaveLength(0);
  });
  it('has no sealing key unless one is configured', async () => {
    await expect(new TdxConfigfsEvidenceProvider().sealingKey()).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    const key = new Uint8Array(32).fill(5);
    await expect(new TdxConfigfsEvidenceProvider({ sealingKey: async () => key }).sealingKey()).resolves.toBe(
      key,
    );
  });
});

describe('NvidiaCommandCollector', () => {
  const script = join(FIX, 'printEvidence.mjs');
  // The collector's whole environment (it inherits nothing of the enclave's, decision 1730).
  const env = {
    FIRN_TEST_EVIDENCE: sharedPath('vectors', 'attestation', 'nvidia-nvtrust', 'ppcie', 'gpu_evidence.json'),
  };
  it('runs the command with the hex nonce and parses the SDK list', async () => {
    const c = new NvidiaCommandCollector({ command: [process.execPath, script, '{nonce}'], env });
    const list = await c.collect(new Uint8Array(32));
    expect(list).toHaveLength(8);
    expect(list[0]!.arch).toBe('HOPPER');
  });
  it('fails typed on exit code, timeout and oversize output', async () => {
    await expect(
      new NvidiaCommandCollector({ command: [process.execPath, script, '--fail'], env }).collect(
        new Uint8Array(32),
      ),
    ).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
    await expect(
      new NvidiaCommandCollector({
        command: [process.execPath, script, '--hang'],
        env,
        timeoutMs: 300,
      }).collect(new Uint8Array(32)),
    ).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    await expect(
      new NvidiaCommandCollector({ command: [process.execPath, script], env, maxOutputBytes: 1000 }).collect(
        new Uint8Array(32),
      ),
    ).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
  });
});
