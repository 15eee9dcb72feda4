import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_QUOTE_BYTES } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MAX_SEV_SNP_AUXBLOB_BYTES,
  SevSnpConfigfsEvidenceProvider,
} from '../../packages/enclave/src/evidence/sevSnpConfigfs.ts';
import {
  nodeTsmFs,
  readAtMost,
  TdxConfigfsEvidenceProvider,
  type TsmFs,
} from '../../packages/enclave/src/evidence/tdxConfigfs.ts';

// A confused or hostile configfs-tsm provider (a buggy driver, a hypervisor-emulated device, a
// tampered guest image) serves an endless outblob/auxblob. The guest must read at most one byte
// over the cap and refuse, not buffer gigabytes. The blobs here are symlinks to /dev/zero, read
// through the production reader (nodeTsmFs.readFile); only mkdir/writeFile emulate the kernel.

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function endlessKernel(provider: 'tdx_guest' | 'sev_guest', endless: Array<'outblob' | 'auxblob'>) {
  const root = mkdtempSync(join(tmpdir(), 'firn-tsm-'));
  roots.push(root);
  const asked: Array<[string, number]> = [];
  const fs: TsmFs = {
    async mkdir(p) {
      await mkdir(p, { recursive: true });
      await writeFile(join(p, 'provider'), `${provider}\n`);
      await writeFile(join(p, 'generation'), '0\n');
    },
    rmdir: async () => undefined,
    async readFile(p, maxBytes) {
      asked.push([p.split('/').pop()!, maxBytes]);
      return nodeTsmFs.readFile(p, maxBytes);
    },
    async writeFile(p, data) {
      await writeFile(p, data);
      if (!p.endsWith('inblob')) return;
      const dir = p.slice(0, -'/inblob'.length);
      const g = Number(await readFile(join(dir, 'generation'), 'utf8'));
      await writeFile(join(dir, 'generation'), `${g + 1}\n`);
      for (const blob of ['outblob', 'auxblob'] as const)
        if (endless.includes(blob)) symlinkSync('/dev/zero', join(dir, blob));
        else writeFileSync(join(dir, blob), new Uint8Array(0x4a0));
    },
  };
  return { root, fs, asked };
}

const rd = new Uint8Array(64).fill(3);

describe('attack: an endless configfs-tsm blob', () => {
  it('readAtMost reads at most cap + 1 bytes of /dev/zero', async () => {
    const b = await readAtMost('/dev/zero', 4096);
    expect(b.length).toBe(4097);
  });

  it('TDX: an endless outblob is refused after MAX_QUOTE_BYTES + 1 bytes', async () => {
    const k = endlessKernel('tdx_guest', ['outblob']);
    const p = new TdxConfigfsEvidenceProvider({ root: k.root, fs: k.fs });
    await expect(p.quote(rd)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
      message: expect.stringContaining(String(MAX_QUOTE_BYTES + 1)),
    });
    expect(k.asked).toContainEqual(['outblob', MAX_QUOTE_BYTES]);
  }, 20_000);

  it('SEV-SNP: an endless outblob is refused after 1185 bytes', async () => {
    const k = endlessKernel('sev_guest', ['outblob']);
    const p = new SevSnpConfigfsEvidenceProvider({ root: k.root, fs: k.fs });
    await expect(p.quote(rd)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
      message: expect.stringContaining('1185 bytes'),
    });
  }, 20_000);

  it('SEV-SNP: an endless auxblob is refused with E_TOO_LARGE after its cap + 1 bytes', async () => {
    const k = endlessKernel('sev_guest', ['auxblob']);
    const p = new SevSnpConfigfsEvidenceProvider({ root: k.root, fs: k.fs });
    await expect(p.quote(rd)).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    expect(k.asked).toContainEqual(['auxblob', MAX_SEV_SNP_AUXBLOB_BYTES]);
  }, 20_000);

  it('the small text attributes (provider, generation) are capped too', async () => {
    const k = endlessKernel('tdx_guest', []);
    const mk = k.fs.mkdir;
    k.fs.mkdir = async (p) => {
      await mk(p);
      rmSync(join(p, 'provider'));
      symlinkSync('/dev/zero', join(p, 'provider'));
    };
    await expect(new TdxConfigfsEvidenceProvider({ root: k.root, fs: k.fs }).quote(rd)).rejects.toMatchObject(
      {
        code: 'E_TOO_LARGE',
      },
    );
  }, 20_000);
});
