import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirnError } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { readKemKeyPair } from '../kemKeyFile.ts';
import { runDashboard } from './dashboard.ts';
import { readRecordFile } from './data.ts';
import { paramValueArg } from './gov.ts';

// Every user-named file or value a command parses fails with a message naming the file, flag or
// parameter a user can fix, and never quoting a file's text (a key file holds a private key).
const dir = mkdtempSync(join(tmpdir(), 'firn-user-values-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const errorOf = (f: () => unknown): FirnError => {
  try {
    f();
  } catch (e) {
    return e as FirnError;
  }
  throw new Error('expected a throw');
};

describe('firn data verify --record', () => {
  it('a file that is not JSON is E_PARSE naming the file, without its text', () => {
    const f = join(dir, 'records.txt');
    writeFileSync(f, 'SECRET-LOOKING-TEXT, not json');
    const err = errorOf(() => readRecordFile(f));
    expect(err.code).toBe('E_PARSE');
    expect(err.message).toContain(`--record ${f}`);
    expect(err.message).not.toContain('SECRET-LOOKING-TEXT');
    expect(err.details).toMatchObject({ file: f });
  });

  it('JSON that is not a record, bytes that are not UTF-8, a missing file and a folder name the file', () => {
    const notRecord = join(dir, 'other.json');
    writeFileSync(notRecord, '{"hello":1}');
    expect(errorOf(() => readRecordFile(notRecord)).message).toContain(`--record ${notRecord}`);
    const binary = join(dir, 'binary.json');
    writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00]));
    expect(errorOf(() => readRecordFile(binary))).toMatchObject({ code: 'E_PARSE' });
    expect(errorOf(() => readRecordFile(binary)).message).toContain(binary);
    const missing = join(dir, 'nope.json');
    expect(errorOf(() => readRecordFile(missing))).toMatchObject({ code: 'E_NOT_FOUND' });
    expect(errorOf(() => readRecordFile(missing)).message).toContain(missing);
    expect(errorOf(() => readRecordFile(dir)).message).toContain(dir);
  });

  it('an empty list and an --index out of range name the file and the range', () => {
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '[]');
    expect(errorOf(() => readRecordFile(empty))).toMatchObject({ code: 'E_NOT_FOUND' });
    expect(errorOf(() => readRecordFile(empty, '0')).message).toContain(empty);
  });
});

describe('firn gov set-param', () => {
  it('a bad value names the parameter, the value and the unit', () => {
    for (const [name, value, unit] of [
      ['market.protocolFeeBps', '5%', 'basis points'],
      ['registry.registrationFee', '1e18', 'wei'],
      ['registry.unbondingPeriod', '-1', 'seconds'],
      ['rewards.livenessTarget', '0x10', 'a count'],
      ['market.claimBond', '', 'wei'],
    ] as const) {
      const err = errorOf(() => paramValueArg(name, value));
      expect(err.code).toBe('E_INVALID_INPUT');
      expect(err.message).toContain(`set-param ${name}: value ${JSON.stringify(value)}`);
      expect(err.message).toContain(unit);
    }
  });

  it('an unknown parameter is named with the known ones; a good value parses', () => {
    expect(errorOf(() => paramValueArg('market.nope', '1')).message).toMatch(
      /unknown parameter market\.nope; one of: .*jobMarket\.protocolFeeBps/,
    );
    expect(paramValueArg('market.protocolFeeBps', '500')).toBe(500n);
    expect(paramValueArg('registry.minNodeStake', '1000000000000000000')).toBe(10n ** 18n);
  });
});

describe('other user files and values', () => {
  it('--kem-key-file that is not JSON names the flag and file, never its text', () => {
    const f = join(dir, 'kem.json');
    writeFileSync(f, '{"privateKey":"0xSECRETSECRET"');
    const err = errorOf(() => readKemKeyPair(f, '--kem-key-file'));
    expect(err).toMatchObject({ code: 'E_INVALID_INPUT' });
    expect(err.message).toBe(`--kem-key-file ${f} is not JSON`);
  });

  it('firn dashboard --from-block that is not a number is E_INVALID_INPUT naming the flag', async () => {
    await expect(runDashboard({ port: '0', fromBlock: 'latest' } as never)).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
      message: expect.stringContaining('--from-block'),
    });
  });
});
