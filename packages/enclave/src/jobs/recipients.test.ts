import { readFileSync } from 'node:fs';
import { bytesToHex, type Hex, sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { jobRecipients, RECIPIENTS_PARAM } from './recipients.ts';

const key = (b: number) => bytesToHex(new Uint8Array(32).fill(b));

describe('jobRecipients', () => {
  it('is the requester alone without the params key', () => {
    expect(jobRecipients(key(1), {}).map(bytesToHex)).toEqual([key(1)]);
  });
  it('adds the listed keys in order, without duplicates', () => {
    const r = jobRecipients(key(1), { [RECIPIENTS_PARAM]: [key(2), key(1), key(3), key(2)] });
    expect(r.map(bytesToHex)).toEqual([key(1), key(2), key(3)]);
  });
  it('refuses a malformed or oversized list with E_JOB_INVALID', () => {
    for (const bad of ['x', [key(2), '0x12'], Array.from({ length: 16 }, (_, i) => key(i + 2)), [42]])
      expect(() => jobRecipients(key(1), { [RECIPIENTS_PARAM]: bad })).toThrow(
        expect.objectContaining({ code: 'E_JOB_INVALID' }),
      );
  });

  it('refuses every low-order X25519 point (Wycheproof x25519 zero-shared-secret keys) as requester or listed recipient, naming it', () => {
    const file = JSON.parse(
      readFileSync(sharedPath('vectors', 'wycheproof', 'x25519_test.json'), 'utf8'),
    ) as {
      testGroups: { tests: { public: string; shared: string }[] }[];
    };
    const low = [
      ...new Set(
        file.testGroups.flatMap((g) =>
          g.tests.filter((t) => /^0+$/.test(t.shared)).map((t) => `0x${t.public}`),
        ),
      ),
    ] as Hex[];
    expect(low.length).toBeGreaterThanOrEqual(12);
    for (const bad of low) {
      expect(() => jobRecipients(bad, {})).toThrow(
        expect.objectContaining({
          code: 'E_JOB_INVALID',
          message: expect.stringMatching(/resultRecipient .*low-order/),
        }),
      );
      expect(() => jobRecipients(key(1), { [RECIPIENTS_PARAM]: [key(2), bad] })).toThrow(
        expect.objectContaining({
          code: 'E_JOB_INVALID',
          message: expect.stringMatching(/\[1\] is a low-order/),
        }),
      );
    }
  });
});
