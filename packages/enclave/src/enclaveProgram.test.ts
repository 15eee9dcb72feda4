import { randomBytes } from 'node:crypto';
import { bytesToHex, computeReportData, type EvidenceBundle, type Hex, hexToBytes } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { createEnclaveProgram } from './enclaveProgram.ts';
import type { EvidenceProvider } from './evidence/types.ts';

// Decision 1830: the operator an enclave serves is named by its host at `init`, fixed for the life
// of the process, and bound into every quote; a request (the node's public attestation route
// forwards only a nonce) cannot change it. The provider here "quotes" by echoing the report data,
// so each test reads exactly what the enclave bound.
const echo: EvidenceProvider = {
  teeType: 'simulated',
  async quote(reportData) {
    return { quote: new Uint8Array(reportData) };
  },
  async sealingKey() {
    return new Uint8Array(32).fill(1);
  },
};
const program = () =>
  createEnclaveProgram({
    provider: echo,
    measurementRegisters: [new Uint8Array(32).fill(2)],
    platformId: new Uint8Array(32).fill(3),
  });
const A = bytesToHex(randomBytes(20));
const B = bytesToHex(randomBytes(20));

/** The report data `bundle`'s keys and nonce give with `operator`. */
const reportDataFor = (bundle: EvidenceBundle, operator?: Hex) =>
  bytesToHex(
    computeReportData({
      enclaveAddress: hexToBytes(bundle.enclaveAddress),
      kemPublicKey: hexToBytes(bundle.kemPublicKey),
      nonce: hexToBytes(bundle.nonce),
      ...(operator === undefined ? {} : { operator: hexToBytes(operator) }),
    }),
  );

describe('the operator an enclave serves (decision 1830)', () => {
  it('init names it; identity reports it; every quote binds it and the bundle carries it', async () => {
    const p = program();
    const id = (await p.handle('init', { operator: A.toUpperCase().replace('0X', '0x') })) as {
      operator?: Hex;
    };
    expect(id.operator).toBe(A);
    expect(((await p.handle('identity', {})) as { operator?: Hex }).operator).toBe(A);
    const b = (await p.handle('attest', { nonce: bytesToHex(randomBytes(32)) })) as EvidenceBundle;
    expect(b.operator).toBe(A);
    expect(b.quote).toBe(reportDataFor(b, A));
  });

  it('a request cannot choose it: an operator among the attest params is ignored', async () => {
    const p = program();
    await p.handle('init', { operator: A });
    const b = (await p.handle('attest', {
      nonce: bytesToHex(randomBytes(32)),
      operator: B,
    })) as EvidenceBundle;
    expect(b.operator).toBe(A);
    expect(b.quote).toBe(reportDataFor(b, A));
  });

  it('is fixed for the process: a later init naming another, or none, is refused; the same is accepted', async () => {
    const p = program();
    const first = (await p.handle('init', { operator: A })) as { sealedKeys: unknown };
    for (const params of [{ operator: B }, {}, { operator: null }])
      await expect(p.handle('init', { ...params, sealedKeys: first.sealedKeys })).rejects.toMatchObject({
        code: 'E_ENCLAVE_PROTOCOL',
        message: expect.stringContaining(A),
      });
    await expect(p.handle('init', { operator: A, sealedKeys: first.sealedKeys })).resolves.toMatchObject({
      operator: A,
    });
    const b = (await p.handle('attest', { nonce: bytesToHex(randomBytes(32)) })) as EvidenceBundle;
    expect(b.operator).toBe(A);
  });

  it('a restarted process may serve another operator with the same sealed keys', async () => {
    const first = (await program().handle('init', { operator: A })) as {
      sealedKeys: unknown;
      enclaveAddress: Hex;
    };
    const again = (await program().handle('init', { operator: B, sealedKeys: first.sealedKeys })) as {
      enclaveAddress: Hex;
      operator?: Hex;
    };
    expect(again).toMatchObject({ enclaveAddress: first.enclaveAddress, operator: B });
  });

  it('without one, quotes bind no operator and the bundle names none', async () => {
    const p = program();
    const id = (await p.handle('init', {})) as { operator?: Hex };
    expect(id.operator).toBeUndefined();
    const b = (await p.handle('attest', { nonce: bytesToHex(randomBytes(32)) })) as EvidenceBundle;
    expect('operator' in b).toBe(false);
    expect(b.quote).toBe(reportDataFor(b));
    expect(b.quote).not.toBe(reportDataFor(b, A));
  });

  it('an operator that is not 20 bytes of hex is E_INVALID_INPUT, and fixes nothing', async () => {
    const p = program();
    for (const operator of [`0x${'ab'.repeat(19)}`, 'zz', 7, `0x${'ab'.repeat(32)}`])
      await expect(p.handle('init', { operator })).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    await expect(p.handle('init', { operator: B })).resolves.toMatchObject({ operator: B });
  });
});
