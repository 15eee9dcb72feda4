import { randomBytes } from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { bytesToHex, type Hex } from '@firn/core';
import { describe, expect, it, vi } from 'vitest';
import { createSessionEndpoint, deriveSessionKeys } from './sessionChannel.ts';

// Decision 1773: a close that does not authenticate changes nothing in the session. The decipher
// contexts the endpoint makes are counted, so a test can tell that the one `prepare` made for the
// requester's next request is the one that request is opened with.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, createDecipheriv: vi.fn(real.createDecipheriv) };
});
const deciphers = () => vi.mocked(nodeCrypto.createDecipheriv).mock.calls.length;

const sessionId = bytesToHex(new Uint8Array(randomBytes(32))) as Hex;
const keys = deriveSessionKeys(new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32)), sessionId);
const isClose = (pt: Uint8Array) => pt.length === 0;

/** A session header (version 1, request, `seq`) then random "ciphertext and tag", as a stranger sends it. */
function junk(seq: bigint, bytes = 528): Uint8Array {
  const m = new Uint8Array(10 + bytes);
  m[0] = 1;
  m[1] = 0x11;
  new DataView(m.buffer).setBigUint64(2, seq, false);
  m.set(randomBytes(bytes), 10);
  return m;
}

describe('a close that does not authenticate (decision 1773)', () => {
  it('attack: junk closes at the next and at a far sequence number are E_DECRYPT and end nothing', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    expect(enclave.openReading(requester.seal(new Uint8Array(3).fill(1)), (r) => r.left)).toMatchObject({
      ok: true,
    });
    for (const seq of [enclave.received, enclave.received + 1n, 1n << 40n, 2n ** 64n - 1n])
      expect(() => enclave.open(junk(seq), isClose, true)).toThrow(
        expect.objectContaining({ code: 'E_DECRYPT' }),
      );
    // An authentic message with the wrong body is still only E_PARSE, and a tampered close too.
    const real = requester.seal(new Uint8Array(0));
    const tampered = Uint8Array.from(real);
    tampered[15]! ^= 1;
    expect(() => enclave.open(tampered, isClose, true)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT' }),
    );
    expect(enclave.ended).toBe(false);
    expect(enclave.received).toBe(1n);
    // The requester's own close then opens, and ends the receiving side's sequence past it.
    expect(enclave.open(real, isClose, true).length).toBe(0);
    expect(enclave.received).toBe(2n);
  });

  it('attack: a junk close neither uses nor spoils the context prepared for the requester’s next request', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    enclave.prepare(); // the context for request 0
    // At the very number that context is for, and ahead of it.
    expect(() => enclave.open(junk(0n), isClose, true)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT' }),
    );
    expect(() => enclave.open(junk(7n), isClose, true)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT' }),
    );
    // An authentic request handed in as the close is refused and leaves the context too.
    const first = requester.seal(new Uint8Array(10).fill(1));
    expect(() => enclave.open(first, isClose, true)).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    const before = deciphers();
    const got = enclave.openReading(first, (r) => Buffer.from(r.take(r.left)));
    // Opened with the prepared context: no new one was made for it.
    expect(deciphers()).toBe(before);
    expect(got.ok && got.value.equals(Buffer.alloc(10, 1))).toBe(true);
    expect(enclave.received).toBe(1n);
    expect(enclave.ended).toBe(false);
  });

  it('a forged request still ends the receiving side (decision 1715), and a close still opens after it', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    expect(() => enclave.openReading(junk(0n), (r) => r.left)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT' }),
    );
    expect(enclave.ended).toBe(true);
    expect(enclave.open(requester.seal(new Uint8Array(0)), isClose, true).length).toBe(0);
  });
});
