import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { NITRO_VECTOR_DIR, NITRO_VECTORS } from '../../packages/attestation/test/nitro/nitroVectors.ts';
import { registerAttestVerify, runAttestVerify } from '../../packages/cli/src/commands/attestVerify.ts';
import { runAttestVerifyGpu } from '../../packages/cli/src/commands/attestVerifyGpu.ts';
import { runAttestVerifyNitro } from '../../packages/cli/src/commands/attestVerifyNitro.ts';
import { runAttestVerifySevSnp } from '../../packages/cli/src/commands/attestVerifySevSnp.ts';
import { loadPolicy } from '../../packages/cli/src/policyArgs.ts';
import { readUserFile, readUserFileSync } from '../../packages/cli/src/readUserFile.ts';

// A user (or a script fed by someone else) names a file that is not a file: a FIFO nobody writes
// (stat says size 0, then readFile blocks forever) or /dev/zero (size 0, then endless bytes). The
// CLI must refuse both at once with a typed error naming the path, and never read more than
// cap + 1 bytes of anything.

const dir = mkdtempSync(join(tmpdir(), 'firn-cli-files-'));
const fifo = join(dir, 'evidence.fifo');
const made = spawnSync('mkfifo', [fifo]);
const haveFifo = made.status === 0;
const at = 1732990000;
const errOf = (r: { output: string }) =>
  (JSON.parse(r.output) as { error: { code: string; message: string } }).error;

const nitroDoc = join(NITRO_VECTOR_DIR, NITRO_VECTORS.base.file);
const SNP_DIR = join(__dirname, '../../packages/attestation/vectors/sev-snp/gcp-milan-v5');
const snp = { report: join(SNP_DIR, 'report.bin'), vek: join(SNP_DIR, 'vcek.pem') };

describe('attack: a FIFO or a device named as evidence, collateral or policy', () => {
  const bad = [...(haveFifo ? [fifo] : []), '/dev/zero'];
  for (const path of bad) {
    it(`every attest verify reader refuses ${path} at once, naming it`, async () => {
      const results = [
        await runAttestVerify({ quote: path, collateral: path, at }),
        await runAttestVerifyNitro({ evidence: path, at }),
        await runAttestVerifyNitro({ evidence: nitroDoc, at, root: path }),
        await runAttestVerifyNitro({ evidence: nitroDoc, at, policy: path }),
        await runAttestVerifySevSnp({ report: path, vcek: path, at }),
        await runAttestVerifySevSnp({ report: snp.report, vcek: path, at }),
        await runAttestVerifySevSnp({ report: snp.report, vcek: snp.vek, chain: path, at }),
        await runAttestVerifySevSnp({ report: snp.report, vcek: snp.vek, crl: path, at }),
        await runAttestVerifyGpu({ evidence: path, nonce: '00'.repeat(32), at }),
      ];
      for (const r of results) {
        expect(r.exitCode).not.toBe(0);
        const e = errOf(r);
        expect(e.code, e.message).toBe('E_INVALID_INPUT');
        expect(e.message).toContain(path);
        expect(e.message).toMatch(/not a regular file/);
      }
      expect(() => loadPolicy(path)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
    }, 10_000);
  }

  it('a directory is refused the same way; a missing file is E_NOT_FOUND naming the path', async () => {
    const d = join(dir, 'a-dir');
    mkdirSync(d, { recursive: true });
    const e1 = errOf(await runAttestVerifyNitro({ evidence: d, at }));
    expect(e1.code).toBe('E_INVALID_INPUT');
    expect(e1.message).toContain(d);
    const missing = join(dir, 'nope.cbor');
    const e2 = errOf(await runAttestVerifyNitro({ evidence: missing, at }));
    expect(e2).toMatchObject({ code: 'E_NOT_FOUND', message: expect.stringContaining(missing) });
  });

  it('a huge (sparse) regular file is refused with E_TOO_LARGE after reading at most cap + 1 bytes', async () => {
    const big = join(dir, 'big.bin');
    writeFileSync(big, '');
    truncateSync(big, 3 * 2 ** 30); // 3 GiB claimed, no disk used
    const e = errOf(await runAttestVerify({ quote: big, collateral: big, at }));
    expect(e.code).toBe('E_TOO_LARGE');
    await expect(readUserFile(big, 'quote', 1024)).rejects.toMatchObject({
      code: 'E_TOO_LARGE',
      details: { limit: 1024 },
    });
    expect(() => readUserFileSync(big, 'policy', 1024)).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
  });

  it('readUserFile returns a regular file whole, up to exactly its cap', async () => {
    const f = join(dir, 'exact.bin');
    writeFileSync(f, Buffer.alloc(1024, 7));
    expect((await readUserFile(f, 'x', 1024)).length).toBe(1024);
    expect(readUserFileSync(f, 'x', 1024).length).toBe(1024);
    await expect(readUserFile(f, 'x', 1023)).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    const empty = join(dir, 'empty.bin');
    writeFileSync(empty, '');
    expect((await readUserFile(empty, 'x', 16)).length).toBe(0);
  });
});

describe('firn attest verify --tee nitro: a genuine debug document refused by the policy', () => {
  it('says the document is genuine and only the policy refused it; --help documents the exit codes', async () => {
    const v = NITRO_VECTORS.eternis0917;
    const r = await runAttestVerifyNitro({ evidence: join(NITRO_VECTOR_DIR, v.file), at: v.verifyAt });
    expect(r.exitCode).toBe(1);
    const o = JSON.parse(r.output) as Record<string, unknown> & { error: { message: string } };
    expect(o).toMatchObject({
      verified: true,
      accepted: false,
      debug: true,
      outcome: 'genuine-policy-refused',
    });
    expect(o.error.message).toMatch(/genuine/);
    expect(o.error.message).toMatch(/policy "cli-nitro" refused it/);
    expect(o.error.message).toContain('--allow-debug');
    // A document that does not verify says so, with another outcome.
    const flipped = join(dir, 'flipped.cbor');
    const doc = Buffer.from(readFileSync(join(NITRO_VECTOR_DIR, v.file)));
    doc[doc.length - 5]! ^= 1;
    writeFileSync(flipped, doc);
    const no = JSON.parse((await runAttestVerifyNitro({ evidence: flipped, at: v.verifyAt })).output);
    expect(no).toMatchObject({ verified: false, outcome: 'not-verified' });
    expect(no.error.message).not.toMatch(/genuine/);

    let help = '';
    const program = new Command().exitOverride();
    program.configureOutput({ writeOut: (s) => (help += s), writeErr: () => undefined });
    registerAttestVerify(program.command('attest'));
    try {
      program.parse(['attest', 'verify', '--help'], { from: 'user' });
    } catch {
      // commander's exitOverride throws after printing the help
    }
    expect(help).toMatch(/Exit codes/);
    expect(help).toMatch(/0 {2}the evidence verified and the policy accepted it/);
    expect(help).toMatch(/genuine-policy-refused/);
  });
});
