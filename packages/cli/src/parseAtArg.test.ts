import { describe, expect, it } from 'vitest';
import { parseAtArg } from './parseAtArg.ts';

describe('parseAtArg (--at of firn attest verify)', () => {
  it('takes unix seconds as a string or a number', () => {
    expect(parseAtArg('1752919234')).toBe(1752919234);
    expect(parseAtArg(0)).toBe(0);
  });

  it('refuses milliseconds, negative, fractional, missing and non-numeric times with E_INVALID_INPUT naming --at', () => {
    expect(() => parseAtArg(String(Date.UTC(2025, 6, 19)))).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT', message: '--at is unix seconds, not milliseconds' }),
    );
    for (const bad of ['-1', '1.5', undefined, 'yesterday'])
      expect(() => parseAtArg(bad), String(bad)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT', message: '--at must be unix seconds' }),
      );
  });
});
