import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runFirn } from '../helpers/firnCli.ts';

// The README's exit code table: 3 for a mistake in the command (a missing file, a malformed flag),
// 2 for an attestation that is refused. `firn attest verify` exits 1 for a missing --collateral file
// and `firn attest verify-gpu` exits 2 for a malformed --nonce, without naming the flag.
const dir = mkdtempSync(join(tmpdir(), 'firn-attest-exit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const firn = (...args: string[]) => runFirn(dir, 60_000, ...args);

describe('attest commands use the README exit codes for user mistakes', () => {
  it('attest verify with a missing --collateral file exits 3 and names the path', () => {
    const quote = join(dir, 'quote.bin');
    writeFileSync(quote, Buffer.alloc(64));
    const missing = join(dir, 'nope.json');
    const r = firn(
      'attest',
      'verify',
      '--quote',
      quote,
      '--collateral',
      missing,
      '--at',
      '1700000000',
      '--json',
    );
    expect(r.out).toContain(missing);
    expect(r.code, r.out).toBe(3);
  });

  it('attest verify-gpu with a short --nonce exits 3 and names --nonce', () => {
    const evidence = join(dir, 'evidence.json');
    writeFileSync(evidence, '{}');
    const r = firn(
      'attest',
      'verify-gpu',
      '--evidence',
      evidence,
      '--nonce',
      '0x12',
      '--at',
      '1700000000',
      '--json',
    );
    expect(r.out).toContain('--nonce');
    expect(r.code, r.out).toBe(3);
  });
});
