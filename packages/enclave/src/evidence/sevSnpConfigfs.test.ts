import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSevSnpReport, sevSnpVerifier } from '@firn/attestation';
import { bytesToHex, measurementDigest, repoRoot } from '@firn/core';
import { createEnclaveProgram } from '../enclaveProgram.ts';
import { environmentFromEnv } from './environmentFromEnv.ts';
import { afterAll, describe, expect, it } from 'vitest';
import {
  collateralFromCertTable,
  parseSevSnpCertTable,
  SEV_SNP_CERT_GUIDS,
  SevSnpConfigfsEvidenceProvider,
  sevSnpEnvironment,
} from './sevSnpConfigfs.ts';
import type { TsmFs } from './tdxConfigfs.ts';

// Captured REAL evidence: a GCP SEV-SNP report (REPORT_DATA all zero), its VCEK and the KDS chain
// (packages/attestation/vectors/sev-snp/gcp-milan-v5/SOURCE.md).
const V = join(repoRoot(), 'packages', 'attestation', 'vectors', 'sev-snp', 'gcp-milan-v5');
const REPORT = new Uint8Array(readFileSync(join(V, 'report.bin')));
const VCEK_PEM = readFileSync(join(V, 'vcek.pem'), 'latin1');
const CHAIN_PEM = readFileSync(join(V, 'cert_chain.pem'), 'latin1');
const NOW = Date.parse('2026-01-01T00:00:00Z') / 1000;
const derOf = (pem: string) =>
  [...pem.matchAll(/-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g)].map(
    (m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')),
  );

function guidBytes(g: string): Uint8Array {
  const h = g.replace(/-/g, '');
  const b = Buffer.from(h, 'hex');
  return Uint8Array.from([
    ...b.subarray(0, 4).reverse(),
    ...b.subarray(4, 6).reverse(),
    ...b.subarray(6, 8).reverse(),
    ...b.subarray(8),
  ]);
}

/** The host's certificate table as the GHCB spec lays it out (what the kernel puts in auxblob). */
function certTable(entries: Array<[string, Uint8Array]>): Uint8Array {
  const head = (entries.length + 1) * 24;
  const out = new Uint8Array(head + entries.reduce((n, [, d]) => n + d.length, 0));
  const dv = new DataView(out.buffer);
  let off = head;
  entries.forEach(([g, d], i) => {
    out.set(guidBytes(g), i * 24);
    dv.setUint32(i * 24 + 16, off, true);
    dv.setUint32(i * 24 + 20, d.length, true);
    out.set(d, off);
    off += d.length;
  });
  return out;
}

const [ASK, ARK] = derOf(CHAIN_PEM);
const TABLE = certTable([
  [SEV_SNP_CERT_GUIDS.vcek, derOf(VCEK_PEM)[0]!],
  [SEV_SNP_CERT_GUIDS.ask, ASK!],
  [SEV_SNP_CERT_GUIDS.ark, ARK!],
]);

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/**
 * A fake configfs-tsm kernel over a temp folder: mkdir creates the entry with `provider` and
 * `generation`; writing inblob bumps generation and fills outblob and auxblob with the captured
 * evidence (as the sev-guest driver would).
 */
function fakeKernel(
  o: { provider?: string; report?: Uint8Array; aux?: Uint8Array | null; racer?: boolean } = {},
) {
  const root = mkdtempSync(join(tmpdir(), 'firn-snp-'));
  roots.push(root);
  const writes: string[] = [];
  const fs: TsmFs = {
    async mkdir(p) {
      await mkdir(p, { recursive: true });
      await writeFile(join(p, 'provider'), `${o.provider ?? 'sev_guest'}\n`);
      await writeFile(join(p, 'generation'), '0\n');
    },
    rmdir: (p) => rm(p, { recursive: true, force: true }),
    readFile: (p) => readFile(p),
    async writeFile(p, data) {
      writes.push(p.split('/').pop()!);
      await writeFile(p, data);
      if (p.endsWith('inblob')) {
        const dir = p.slice(0, -'/inblob'.length);
        const g = Number(await readFile(join(dir, 'generation'), 'utf8'));
        await writeFile(join(dir, 'generation'), `${g + (o.racer ? 2 : 1)}\n`);
        await writeFile(join(dir, 'outblob'), o.report ?? REPORT);
        if (o.aux !== null) await writeFile(join(dir, 'auxblob'), o.aux ?? TABLE);
      }
    },
  };
  return { root, fs, writes };
}

describe('SevSnpConfigfsEvidenceProvider (fake configfs-tsm tree, captured real evidence)', () => {
  it('returns the real report unchanged and the VCEK + chain from auxblob, which verify', async () => {
    const k = fakeKernel();
    const p = new SevSnpConfigfsEvidenceProvider({ root: k.root, fs: k.fs, privlevel: 0 });
    expect(p.teeType).toBe('sev-snp');
    const { quote, collateral } = await p.quote(new Uint8Array(64));
    expect(Buffer.from(quote)).toEqual(Buffer.from(REPORT));
    expect(k.writes).toEqual(['privlevel', 'inblob']);
    const facts = await sevSnpVerifier.verify(parseSevSnpReport(quote), { now: NOW, collateral });
    expect(facts.extra.product).toBe('Milan');
  });

  it('environmentFromEnv(FIRN_TEE=sev-snp): it names itself as a verifier does and needs a key broker', async () => {
    const k = fakeKernel();
    const env = await environmentFromEnv({ FIRN_TEE: 'sev-snp' }, new Uint8Array(32), {
      tsmFs: k.fs,
      fsRoot: k.root,
    });
    const facts = await sevSnpVerifier.verify(parseSevSnpReport(REPORT), {
      now: NOW,
      collateral: { vek: VCEK_PEM, chain: CHAIN_PEM },
    });
    expect(bytesToHex(measurementDigest('sev-snp', env.measurementRegisters))).toBe(
      bytesToHex(facts.measurement),
    );
    expect(bytesToHex(env.platformId)).toBe(bytesToHex(facts.platformId));
    // No hardware sealing key: without a key broker pinned in its image the enclave refuses to start.
    await expect(createEnclaveProgram(env).handle('init', {})).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
  });

  it('sevSnpEnvironment: the guest names itself as the verifier does (same measurement digest and chip id)', async () => {
    const k = fakeKernel();
    const env = await sevSnpEnvironment({ root: k.root, fs: k.fs });
    const facts = await sevSnpVerifier.verify(parseSevSnpReport(REPORT), {
      now: NOW,
      collateral: { vek: VCEK_PEM, chain: CHAIN_PEM },
    });
    expect(bytesToHex(measurementDigest('sev-snp', env.measurementRegisters))).toBe(
      bytesToHex(facts.measurement),
    );
    expect(bytesToHex(env.platformId)).toBe(bytesToHex(facts.platformId));
  });

  it('without auxblob, the report alone (the verifier fetches the VCEK)', async () => {
    const k = fakeKernel({ aux: null });
    const r = await new SevSnpConfigfsEvidenceProvider({ root: k.root, fs: k.fs }).quote(new Uint8Array(64));
    expect(r.collateral).toBeUndefined();
  });

  it('refuses a report that binds other report data than requested (E_CONFLICT)', async () => {
    const k = fakeKernel();
    await expect(
      new SevSnpConfigfsEvidenceProvider({ root: k.root, fs: k.fs }).quote(new Uint8Array(64).fill(1)),
    ).rejects.toMatchObject({ code: 'E_CONFLICT' });
  });

  it('refuses a concurrent writer, another provider, a short report, and a missing tree', async () => {
    const rd = new Uint8Array(64);
    const racer = fakeKernel({ racer: true });
    await expect(
      new SevSnpConfigfsEvidenceProvider({ root: racer.root, fs: racer.fs }).quote(rd),
    ).rejects.toMatchObject({
      code: 'E_CONFLICT',
    });
    const tdx = fakeKernel({ provider: 'tdx_guest' });
    await expect(
      new SevSnpConfigfsEvidenceProvider({ root: tdx.root, fs: tdx.fs }).quote(rd),
    ).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    const short = fakeKernel({ report: REPORT.subarray(0, 100) });
    await expect(
      new SevSnpConfigfsEvidenceProvider({ root: short.root, fs: short.fs }).quote(rd),
    ).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    const empty = mkdtempSync(join(tmpdir(), 'firn-snp-none-'));
    roots.push(empty);
    await expect(new SevSnpConfigfsEvidenceProvider({ root: empty }).quote(rd)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    await expect(
      new SevSnpConfigfsEvidenceProvider({ root: empty }).quote(new Uint8Array(32)),
    ).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
  });

  it('the /dev/sev-guest path through a pluggable source (a helper issuing the ioctl)', async () => {
    const asked: Uint8Array[] = [];
    const p = new SevSnpConfigfsEvidenceProvider({
      source: async (rd) => {
        asked.push(rd);
        return { report: REPORT, certTable: TABLE };
      },
    });
    const { quote, collateral } = await p.quote(new Uint8Array(64));
    expect(asked).toHaveLength(1);
    expect(Buffer.from(quote)).toEqual(Buffer.from(REPORT));
    expect(collateral).toMatchObject({ vek: expect.stringContaining('BEGIN CERTIFICATE') });
  });

  it('certificate tables: malformed ones are refused with typed errors', () => {
    expect(parseSevSnpCertTable(TABLE).size).toBe(3);
    expect(collateralFromCertTable(certTable([[SEV_SNP_CERT_GUIDS.ask, ASK!]]))).toBeUndefined();
    const noEnd = TABLE.slice(0, 24);
    expect(() => parseSevSnpCertTable(noEnd)).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
    const outside = new Uint8Array(TABLE);
    new DataView(outside.buffer).setUint32(20, 1 << 30, true);
    expect(() => parseSevSnpCertTable(outside)).toThrow(
      expect.objectContaining({ code: 'E_EVIDENCE_MALFORMED' }),
    );
    expect(() => parseSevSnpCertTable(new Uint8Array(1 << 20))).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
  });

  it('sealing key only when configured', async () => {
    await expect(new SevSnpConfigfsEvidenceProvider().sealingKey()).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
    });
    const key = new Uint8Array(32).fill(7);
    await expect(
      new SevSnpConfigfsEvidenceProvider({ sealingKey: async () => key }).sealingKey(),
    ).resolves.toBe(key);
    expect(() => new SevSnpConfigfsEvidenceProvider({ privlevel: 4 })).toThrow(/privlevel/);
  });
});
