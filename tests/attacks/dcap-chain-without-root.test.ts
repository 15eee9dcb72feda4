import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../packages/attestation/test/codeOf.ts';
import { VECTORS, vector, vectorJson } from '../../packages/attestation/test/dcap/testVectors.ts';
import { clearDcapCaches, verifyDcapQuote } from '../../packages/attestation/src/dcap/verifyDcapQuote.ts';

const dcapQvl = createRequire(import.meta.url)('@phala/dcap-qvl') as {
  verify(q: Uint8Array, c: unknown, now: number): unknown;
};

function vendor(q: Uint8Array, c: unknown, now: number): string {
  try {
    dcapQvl.verify(q, c, now);
    return 'ok';
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
/** The chain text with the BEGIN marker of its last block (the root) damaged in one character. */
const damageLastBegin = (s: string) => {
  const i = s.lastIndexOf(BEGIN);
  return `${s.slice(0, i)}0${s.slice(i + 1)}`;
};

// A careless operator (or a PCCS) serves a chain whose root block is damaged. A careful verifier
// refuses the chain (it no longer holds the root); firn silently skips the damaged block and
// completes the chain with its pinned root, so the verdicts differ.
describe('attack: an issuer chain whose root block is damaged', () => {
  it('the TCB info / QE identity issuer chain without a readable root is refused, as dcap-qvl does', async () => {
    const c = VECTORS.sgx;
    for (const f of ['tcb_info_issuer_chain', 'qe_identity_issuer_chain'] as const) {
      clearDcapCaches();
      const base = vectorJson(c.collateral);
      const col = { ...base, [f]: damageLastBegin(base[f] as string) };
      expect(vendor(vector(c.quote), col, c.now), f).not.toBe('ok');
      expect(await codeOf(verifyDcapQuote(vector(c.quote), { collateral: col, now: c.now })), f).not.toBe(
        'ok',
      );
    }
  });
});
