import { describe, expect, it } from 'vitest';
import { maxOutputArg } from './sizeArgs.ts';

describe('--max-output', () => {
  it('takes a size with a unit or in bytes', () => {
    expect(maxOutputArg(undefined)).toBeUndefined();
    expect(maxOutputArg('64MiB')).toBe(64 * 1024 ** 2);
    expect(maxOutputArg('2 gib')).toBe(2 * 1024 ** 3);
    expect(maxOutputArg('4096')).toBe(4096);
  });
  it('refuses what is not a size from 4 KiB to 2 GiB, naming the flag', () => {
    for (const bad of ['64MB', '1.5GiB', '-1', 'lots', '100', '0'])
      expect(() => maxOutputArg(bad)).toThrow(/--max-output must be a size of at least 4096 bytes/);
    expect(() => maxOutputArg('3GiB')).toThrow(/--max-output must be at most 2GiB/);
    expect(() => maxOutputArg('1TiB')).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
  });
});
