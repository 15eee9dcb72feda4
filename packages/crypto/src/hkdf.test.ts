import { bytesToHex, hexToBytes, isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { hkdfSha256 } from './hkdf.ts';
import { loadWycheproof } from './wycheproof.ts';

const h = (s: unknown) => hexToBytes(String(s));
const file = loadWycheproof<{ keySize: number }>('hkdf_sha256_test.json');

describe('Wycheproof hkdf_sha256_test.json through hkdfSha256', () => {
  let executed = 0;
  for (const g of file.testGroups) {
    it(`ikm ${g.keySize} bits (${g.tests.length} tests)`, () => {
      for (const t of g.tests) {
        const run = () => hkdfSha256(h(t.ikm), h(t.salt), h(t.info), Number(t.size));
        if (t.result === 'valid') {
          expect(bytesToHex(run()), `tc ${t.tcId}`).toBe(bytesToHex(h(t.okm)));
        } else {
          // The only invalid cases are SizeTooLarge (L > 255 * 32).
          expect(t.flags).toContain('SizeTooLarge');
          let code = 'ok';
          try {
            run();
          } catch (e) {
            code = isFirnError(e) ? e.code : 'foreign';
          }
          expect(code, `tc ${t.tcId}`).toBe('E_INVALID_INPUT');
        }
        executed++;
      }
    });
  }
  it('executed every test', () => {
    expect(executed).toBe(file.numberOfTests);
  });
});
