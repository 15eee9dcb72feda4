import { bytesToHex, hexToBytes, isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { loadWycheproof } from './wycheproof.ts';
import { x25519SharedSecret } from './x25519.ts';

const h = (s: unknown) => hexToBytes(String(s));
const file = loadWycheproof<{ curve: string }>('x25519_test.json');

// Policy for the 254 'acceptable' cases: accept (and compute exactly) twist points, non-canonical
// and otherwise special public keys; refuse exactly the ones giving an all-zero shared secret.
describe('Wycheproof x25519_test.json through x25519SharedSecret', () => {
  let executed = 0;
  let refused = 0;
  for (const g of file.testGroups) {
    it(`${g.curve} (${g.tests.length} tests)`, () => {
      for (const t of g.tests) {
        const zero = /^0+$/.test(String(t.shared));
        expect(zero, `tc ${t.tcId}`).toBe(t.flags.includes('ZeroSharedSecret'));
        if (zero) {
          let code = 'ok';
          try {
            x25519SharedSecret(h(t.private), h(t.public));
          } catch (e) {
            code = isFirnError(e) ? e.code : 'foreign';
          }
          expect(code, `tc ${t.tcId}`).toBe('E_CRYPTO');
          refused++;
        } else {
          expect(bytesToHex(x25519SharedSecret(h(t.private), h(t.public))), `tc ${t.tcId}`).toBe(
            `0x${t.shared}`,
          );
        }
        executed++;
      }
    });
  }
  it('executed every test; refused exactly the 31 zero-shared-secret cases', () => {
    expect(executed).toBe(file.numberOfTests);
    expect(refused).toBe(31);
  });
});
