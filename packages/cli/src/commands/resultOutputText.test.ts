import type { FirnError, Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { outputTensorNames } from './infer.ts';
import { modelDirFiles } from './train.ts';

// An opened output is the requester's plaintext: when it is not the JSON the command expects, the
// error is typed and never quotes it (a SyntaxError from JSON.parse would carry a slice of it).
const SECRET = 'the-requesters-secret-result';
const bytes = (s: string) => new TextEncoder().encode(s);
const thrown = (f: () => unknown): FirnError => {
  try {
    f();
  } catch (e) {
    return e as FirnError;
  }
  throw new Error('did not throw');
};

describe('opened outputs that are not the expected JSON', () => {
  for (const text of [`{"${SECRET}": `, SECRET, 'null', `["${SECRET}"]`])
    it(`firn infer: ${JSON.stringify(text.slice(0, 12))} is E_JOB_FAILED without quoting it`, () => {
      const e = thrown(() => outputTensorNames(bytes(text)));
      expect(e.code).toBe('E_JOB_FAILED');
      expect(e.message).not.toContain(SECRET);
    });

  it('firn infer: a JSON object of tensors gives its names', () => {
    expect(outputTensorNames(bytes('{"y": {"dims": [1], "data": [1]}}'))).toEqual(['y']);
  });

  for (const text of [`{"${SECRET}"`, 'null', '7'])
    it(`firn train: a metrics report ${JSON.stringify(text.slice(0, 12))} is E_JOB_FAILED without quoting it`, () => {
      const e = thrown(() =>
        modelDirFiles(
          '/nonexistent',
          [{ role: 'metrics', contentType: 'application/json', bytes: bytes(text) }],
          {},
          `0x${'00'.repeat(32)}` as Hex,
        ),
      );
      expect(e.code).toBe('E_JOB_FAILED');
      expect(e.message).not.toContain(SECRET);
    });
});
