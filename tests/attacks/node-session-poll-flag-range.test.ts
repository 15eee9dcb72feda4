import { describe, expect, it } from 'vitest';
import { schedulerFromArgs } from '../../packages/cli/src/commands/node.ts';

// Attack (careless operator, decision 1800): `--session-poll-ms` takes 0 (off) to 1000, but it
// is parsed with the helper of the positive-only flags. Only the exact text "0" is special-cased,
// so "00" (zero) is refused, and every refusal under the range says the flag "must be a positive
// whole number": an operator who typed -1 or 00 is told 0 is not allowed, the opposite of --help
// ("0 (off) to 1000"). Secure outcome: zero written any way is zero, and a refusal states the
// real range.

const refusal = (f: () => unknown): Error | undefined => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  return undefined;
};

describe('--session-poll-ms takes 0 to 1000 written any way, and a refusal states that range', () => {
  it('a refused value is told the range 0 to 1000, not "positive"', () => {
    const e = refusal(() => schedulerFromArgs({ sessionPollMs: '-1' } as never));
    expect(e?.message).toMatch(/--session-poll-ms/);
    expect(e?.message).not.toMatch(/positive/);
    expect(e?.message).toMatch(/\b0\b.*1000|1000.*\b0\b/);
  });

  it('zero written as "00" is zero (off), like "0"', () => {
    const e = refusal(() => schedulerFromArgs({ sessionPollMs: '00' } as never));
    expect(e?.message).toBeUndefined();
    expect(schedulerFromArgs({ sessionPollMs: '00' } as never).sessionPollMs).toBe(0);
  });
});
