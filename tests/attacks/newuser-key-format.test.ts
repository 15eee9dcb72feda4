import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readKey } from '../../packages/cli/src/chainArgs.ts';

// A new user hands `--key-file` the wrong file (a keygen KEM key, a note) or sets FIRN_REQUESTER_KEY
// to junk: the error must name the file or the variable to fix, and never echo the key material.
const dir = mkdtempSync(join(tmpdir(), 'firn-key-format-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a private key in the wrong format', () => {
  it('--key-file with a wrong format names the file and the flag', () => {
    const file = join(dir, 'my key.json');
    writeFileSync(file, '{"kem":"secret-ish"}');
    expect(() => readKey({ keyFile: file, env: 'FIRN_REQUESTER_KEY' })).toThrow(file);
    expect(() => readKey({ keyFile: file, env: 'FIRN_REQUESTER_KEY' })).toThrow(/--key-file/);
    expect(() => readKey({ keyFile: file, env: 'FIRN_REQUESTER_KEY' })).not.toThrow(/secret-ish/);
  });

  it('an environment variable with a wrong format names the variable, not its value', () => {
    const prev = process.env['FIRN_REQUESTER_KEY'];
    process.env['FIRN_REQUESTER_KEY'] = '0xdeadbeefnotakey';
    try {
      expect(() => readKey({ env: 'FIRN_REQUESTER_KEY' })).toThrow(/FIRN_REQUESTER_KEY/);
      expect(() => readKey({ env: 'FIRN_REQUESTER_KEY' })).not.toThrow(/deadbeef/);
    } finally {
      if (prev === undefined) delete process.env['FIRN_REQUESTER_KEY'];
      else process.env['FIRN_REQUESTER_KEY'] = prev;
    }
  });
});
