import { bytesToHex, hexToBytes, isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { aesGcmDecrypt, aesGcmEncrypt } from './aesGcm.ts';
import { loadWycheproof } from './wycheproof.ts';

const h = (s: unknown) => hexToBytes(String(s));
const file = loadWycheproof<{ ivSize: number; keySize: number; tagSize: number }>('aes_gcm_test.json');

function errCode(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isFirnError(e) ? e.code : 'foreign';
  }
}

describe('Wycheproof aes_gcm_test.json through aesGcmEncrypt/aesGcmDecrypt', () => {
  let executed = 0;
  let skipped = 0;
  for (const g of file.testGroups) {
    it(`key ${g.keySize} iv ${g.ivSize} tag ${g.tagSize} (${g.tests.length} tests)`, () => {
      for (const t of g.tests) {
        const key = h(t.key);
        const iv = h(t.iv);
        const aad = h(t.aad);
        const sealed = hexToBytes(String(t.ct) + String(t.tag));
        if (g.ivSize !== 96 || g.tagSize !== 128) {
          // Skipped as a vector, but only because our API refuses the size: assert that it does.
          expect(
            errCode(() => aesGcmDecrypt(key, iv, sealed, aad)),
            `tc ${t.tcId}`,
          ).toBe('E_INVALID_INPUT');
          expect(
            errCode(() => aesGcmEncrypt(key, iv, h(t.msg), aad)),
            `tc ${t.tcId}`,
          ).toBe('E_INVALID_INPUT');
          skipped++;
          continue;
        }
        if (t.result === 'valid') {
          expect(bytesToHex(aesGcmEncrypt(key, iv, h(t.msg), aad)), `tc ${t.tcId}`).toBe(bytesToHex(sealed));
          expect(bytesToHex(aesGcmDecrypt(key, iv, sealed, aad)), `tc ${t.tcId}`).toBe(bytesToHex(h(t.msg)));
        } else {
          expect(
            errCode(() => aesGcmDecrypt(key, iv, sealed, aad)),
            `tc ${t.tcId}`,
          ).toBe('E_DECRYPT');
        }
        executed++;
      }
    });
  }
  it('executed every test except the documented non-96-bit-IV skips', () => {
    expect(file.numberOfTests).toBe(316);
    expect(skipped).toBe(119);
    expect(executed).toBe(file.numberOfTests - skipped);
  });
});

describe('aesGcm API', () => {
  it('rejects wrong key sizes and short inputs with typed errors', () => {
    expect(errCode(() => aesGcmEncrypt(new Uint8Array(20), new Uint8Array(12), new Uint8Array(1)))).toBe(
      'E_INVALID_INPUT',
    );
    expect(errCode(() => aesGcmDecrypt(new Uint8Array(32), new Uint8Array(12), new Uint8Array(15)))).toBe(
      'E_DECRYPT',
    );
  });
});
