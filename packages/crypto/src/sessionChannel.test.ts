import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { bytesToHex, encodeFields, type Hex, sha256, TAGS, taggedSha256, u64be, utf8 } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  createSessionEndpoint,
  deriveSessionKeys,
  MAX_SESSION_BODY_BYTES,
  SESSION_MIN_PADDED_BYTES,
  SessionTranscript,
  sessionPaddedLength,
} from './sessionChannel.ts';

// The session wire form against an independent AES-256-GCM decryption (node:crypto directly, not
// the endpoint's code): header, nonce = seq, associated data = tag || sessionId || seq.
const secret = new Uint8Array(randomBytes(32));
const salt = new Uint8Array(randomBytes(32));
const sessionId = bytesToHex(new Uint8Array(randomBytes(32))) as Hex;
const keys = deriveSessionKeys(secret, salt, sessionId);

/** `plaintext` sealed as request `seq` exactly as given (no padding added): what only a key holder can make. */
function independentSeal(plaintext: Uint8Array, seq: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce.set(u64be(seq), 4);
  const c = createCipheriv('aes-256-gcm', keys.request, nonce, { authTagLength: 16 });
  c.setAAD(encodeFields([utf8(TAGS.sessionRequest), Buffer.from(sessionId.slice(2), 'hex'), u64be(seq)]));
  const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  const head = new Uint8Array(10);
  head[0] = 1;
  head[1] = 0x11;
  head.set(u64be(seq), 2);
  return Buffer.concat([head, ct]);
}

function independentOpen(message: Uint8Array, seq: bigint): Buffer {
  const nonce = new Uint8Array(12);
  nonce.set(u64be(seq), 4);
  const d = createDecipheriv('aes-256-gcm', keys.request, nonce, { authTagLength: 16 });
  d.setAAD(encodeFields([utf8(TAGS.sessionRequest), Buffer.from(sessionId.slice(2), 'hex'), u64be(seq)]));
  const ct = message.subarray(10);
  d.setAuthTag(ct.subarray(ct.length - 16));
  return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
}

describe('session channel wire form', () => {
  it('seals version, kind, sequence and AES-256-GCM of the padded plaintext exactly as specified (checked by an independent decryption)', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    for (const [i, size] of [0, 1, 511, 512, 4096, 128 * 1024 + 3].entries()) {
      const pt = new Uint8Array(randomBytes(size));
      const m = requester.seal(pt);
      expect(m[0]).toBe(1);
      expect(m[1]).toBe(0x11);
      expect(Buffer.from(m.subarray(2, 10))).toEqual(Buffer.from(u64be(BigInt(i))));
      // ISO/IEC 7816-4 padding inside the AEAD: body || 0x80 || zeros, at least 512 bytes (decision 1735).
      const padded = Math.max(size + 1, SESSION_MIN_PADDED_BYTES);
      expect(m.length).toBe(10 + padded + 16);
      const want = Buffer.alloc(padded);
      want.set(pt);
      want[size] = 0x80;
      expect(Buffer.compare(independentOpen(m, BigInt(i)), want)).toBe(0);
    }
  });

  it('pads to what the sender asks (padTo), and never past the message cap', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    const short = requester.seal(new Uint8Array(3).fill(1), 5000);
    const long = requester.seal(new Uint8Array(4000).fill(2), 5000);
    expect(short.length).toBe(long.length);
    expect(short.length).toBe(10 + 5000 + 16);
    expect(Buffer.from(enclave.open(short))).toEqual(Buffer.alloc(3, 1));
    expect(Buffer.from(enclave.open(long))).toEqual(Buffer.alloc(4000, 2));
    expect(sessionPaddedLength(10, 2 ** 40)).toBe(MAX_SESSION_BODY_BYTES + 1);
    expect(sessionPaddedLength(MAX_SESSION_BODY_BYTES)).toBe(MAX_SESSION_BODY_BYTES + 1);
  });

  it('attack: an authentic message with malformed padding is a forgery: E_DECRYPT, nothing read, the endpoint ended (decision 1735)', () => {
    const body = new Uint8Array(600).fill(7);
    const withPad = (tail: number[]) => Uint8Array.from([...body, ...tail]);
    for (const [what, pt] of [
      ['no padding at all (last byte not 0x80 or 0)', withPad([])],
      ['zeros with no 0x80 marker', Uint8Array.from(new Uint8Array(600))],
      ['a non-zero byte after the 0x80', withPad([0x80, 0, 1])],
      ['0x81 as the marker', withPad([0x81, 0, 0])],
      ['empty', new Uint8Array(0)],
    ] as const) {
      const enclave = createSessionEndpoint('enclave', keys, sessionId);
      let calls = 0;
      expect(
        () =>
          enclave.openReading(independentSeal(pt, 0n), (r) => {
            calls++;
            return r.left;
          }),
        what,
      ).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
      expect(calls).toBe(0);
      expect(enclave.received).toBe(0n);
      expect(enclave.ended).toBe(true);
      const other = createSessionEndpoint('enclave', keys, sessionId);
      expect(() => other.open(independentSeal(pt, 0n)), what).toThrow(
        expect.objectContaining({ code: 'E_DECRYPT' }),
      );
      expect(other.ended).toBe(true);
    }
    // The same body correctly padded, sealed independently, opens to the body alone.
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    const got = enclave.openReading(independentSeal(withPad([0x80, 0, 0]), 0n), (r) => r.take(r.left));
    expect(got.ok && Buffer.from(got.value).equals(Buffer.from(body))).toBe(true);
  });

  it('opens into a plain Uint8Array of exactly the plaintext', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    const pt = new Uint8Array(randomBytes(1000));
    const m = requester.seal(pt);
    const back = enclave.open(m);
    expect(Buffer.isBuffer(back)).toBe(false);
    expect(back.byteLength).toBe(1000);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(pt))).toBe(0);
    expect(enclave.received).toBe(1n);
    expect(enclave.ended).toBe(false);
  });

  it('attack: a flipped bit is E_DECRYPT, consumes nothing, and ends the receiving side: the genuine message is refused too (decision 1715)', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    const m = requester.seal(new Uint8Array(randomBytes(1000)));
    const bad = Uint8Array.from(m);
    bad[20]! ^= 1;
    expect(() => enclave.open(bad)).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
    expect(enclave.received).toBe(0n);
    expect(enclave.ended).toBe(true);
    // One try: the forger cannot go on probing, and the session must be reopened.
    expect(() => enclave.open(m)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT', message: expect.stringMatching(/session ended/) }),
    );
    expect(() => enclave.openReading(m, (r) => r.left)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT' }),
    );
    // The requester's close still opens (only compared once it authenticates), so it can end the
    // session; a request handed in as the close is still not taken.
    expect(() => enclave.open(m, (pt) => pt.length === 0, true)).toThrow(
      expect.objectContaining({ code: 'E_PARSE' }),
    );
    const close = requester.seal(new Uint8Array(0));
    expect(enclave.open(close, (pt) => pt.length === 0, true).length).toBe(0);
    // Sequence and kind refusals are not forgeries: they end nothing.
    const other = createSessionEndpoint('enclave', keys, sessionId);
    requester.seal(new Uint8Array(1));
    const ahead = requester.seal(new Uint8Array(1));
    expect(() => other.open(ahead)).toThrow(expect.objectContaining({ code: 'E_CHANNEL_SEQUENCE' }));
    expect(() => other.open(m, () => false)).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(other.ended).toBe(false);
    expect(other.open(m).length).toBe(1000);
  });
});

describe('session channel sealed in parts', () => {
  it('sealParts gives the very bytes seal gives for the concatenation, and moves the sequence alike', () => {
    const a = createSessionEndpoint('requester', keys, sessionId);
    const b = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    for (const sizes of [[0], [3, 0, 5], [26, 128 * 1024], [1, 65536, 7, 65536]]) {
      const parts = sizes.map((n) => new Uint8Array(randomBytes(n)));
      const whole = a.seal(Buffer.concat(parts));
      const wire = b.sealParts(parts);
      expect(Buffer.compare(Buffer.concat(wire), Buffer.from(whole))).toBe(0);
      expect(Buffer.compare(Buffer.from(enclave.open(Buffer.concat(wire))), Buffer.concat(parts))).toBe(0);
    }
    expect(b.sent).toBe(a.sent);
  });

  it('refuses parts over the session cap without using a sequence number', () => {
    const a = createSessionEndpoint('requester', keys, sessionId);
    const big = new Uint8Array(4 * 1024 * 1024);
    expect(() => a.sealParts([big, big])).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(a.sent).toBe(0n);
  });
});

describe('session channel opened while read (openReading)', () => {
  const pair = () => ({
    requester: createSessionEndpoint('requester', keys, sessionId),
    enclave: createSessionEndpoint('enclave', keys, sessionId),
  });

  it('hands the reader pieces of exactly the plaintext, views of its own buffer, and consumes the sequence number', () => {
    const { requester, enclave } = pair();
    const pt = new Uint8Array(randomBytes(70_000));
    const m = requester.seal(pt);
    const got = enclave.openReading(m, (r) => {
      const a = r.take(26);
      const b = r.take(r.left);
      return { a, b };
    });
    if (!got.ok) throw got.error;
    const { a, b } = got.value;
    expect(Buffer.concat([a, b]).equals(Buffer.from(pt))).toBe(true);
    // Views of one buffer that holds this plaintext alone (a decoder may view it instead of copying).
    expect(Buffer.isBuffer(b)).toBe(false);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + 26);
    expect(b.buffer).not.toBe(m.buffer);
    expect(enclave.received).toBe(1n);
  });

  it('attack: the reader never sees a message that does not authenticate; E_DECRYPT, place kept, endpoint ended', () => {
    for (const at of [12, 1001 + 10 - 20, 1001 + 10 + 3]) {
      // A flipped bit in the first plaintext byte, one near the end, one in the tag.
      const { requester, enclave } = pair();
      const m = requester.seal(new Uint8Array(1000).fill(7));
      const bad = Uint8Array.from(m);
      bad[at]! ^= 1;
      let calls = 0;
      expect(() =>
        enclave.openReading(bad, (r) => {
          calls++;
          return r.take(r.left);
        }),
      ).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
      expect(calls).toBe(0);
      expect(enclave.received).toBe(0n);
      expect(enclave.ended).toBe(true);
      expect(() => enclave.openReading(m, (r) => r.take(r.left))).toThrow(
        expect.objectContaining({ code: 'E_DECRYPT' }),
      );
      expect(calls).toBe(0);
    }
    // Without the forgery the same message opens.
    const { requester, enclave } = pair();
    const ok = enclave.openReading(requester.seal(new Uint8Array(1000).fill(7)), (r) => r.take(r.left));
    expect(ok.ok && ok.value.every((x) => x === 7)).toBe(true);
  });

  it('an authentic message whose reader fails is answered: {ok: false} with the error, sequence consumed', () => {
    const { requester, enclave } = pair();
    const got = enclave.openReading(requester.seal(new Uint8Array(4)), (r) => r.take(5));
    expect(got.ok).toBe(false);
    expect(!got.ok && (got.error as { code?: string }).code).toBe('E_PARSE');
    expect(enclave.received).toBe(1n);
    // Replays and reorders are refused before any decryption, as by open.
    expect(() => enclave.openReading(requester.seal(new Uint8Array(1)), (r) => r.left)).not.toThrow();
    requester.seal(new Uint8Array(1)); // dropped on the way
    const skipped = requester.seal(new Uint8Array(1));
    expect(() => enclave.openReading(skipped, (r) => r.left)).toThrow(
      expect.objectContaining({ code: 'E_CHANNEL_SEQUENCE' }),
    );
  });
});

describe('session channel contexts made ahead (prepare, decision 1772)', () => {
  it('seals the very bytes an endpoint that never prepares seals, whatever the order of prepare, seal and sealParts', () => {
    const plain = createSessionEndpoint('requester', keys, sessionId);
    const ahead = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    const enclaveAhead = createSessionEndpoint('enclave', keys, sessionId);
    enclaveAhead.prepare();
    for (let i = 0; i < 12; i++) {
      // Prepare before some messages, twice before some, never before others.
      if (i % 3 !== 2) ahead.prepare();
      if (i % 4 === 0) ahead.prepare();
      const pt = new Uint8Array(randomBytes([0, 5, 600, 70_000][i % 4]!));
      const want =
        i % 2 === 0 ? plain.seal(pt) : Buffer.concat(plain.sealParts([pt.subarray(0, 3), pt.subarray(3)]));
      const got =
        i % 2 === 0 ? ahead.seal(pt) : Buffer.concat(ahead.sealParts([pt.subarray(0, 3), pt.subarray(3)]));
      expect(Buffer.compare(Buffer.from(got), Buffer.from(want))).toBe(0);
      expect(Buffer.compare(independentOpen(got, BigInt(i)).subarray(0, pt.length), Buffer.from(pt))).toBe(0);
      // Opened with and without a prepared context: the same plaintext.
      const a = enclave.openReading(got, (r) => r.take(r.left));
      const b = enclaveAhead.openReading(got, (r) => r.take(r.left));
      if (i % 3 !== 1) enclaveAhead.prepare();
      expect(
        a.ok &&
          b.ok &&
          Buffer.from(a.value).equals(Buffer.from(pt)) &&
          Buffer.from(b.value).equals(Buffer.from(pt)),
      ).toBe(true);
    }
    expect(ahead.sent).toBe(12n);
    expect(enclaveAhead.received).toBe(12n);
  });

  it('attack: a prepared context spent on a forgery or on a refused close is never used again (a spent GCM context would reject the genuine message or reuse its nonce)', () => {
    // Spent on a message `accept` refuses: the genuine request of that number still opens.
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    enclave.prepare();
    const first = requester.seal(new Uint8Array(10).fill(1));
    expect(() => enclave.open(first, () => false)).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(enclave.received).toBe(0n);
    expect(Buffer.from(enclave.open(first))).toEqual(Buffer.alloc(10, 1));
    // Spent on a forgery: refused, the side ends, and a close under the same number still opens.
    const enclave2 = createSessionEndpoint('enclave', keys, sessionId);
    enclave2.prepare();
    const m = createSessionEndpoint('requester', keys, sessionId).seal(new Uint8Array(10).fill(2));
    const bad = Uint8Array.from(m);
    bad[12]! ^= 1;
    expect(() => enclave2.openReading(bad, (r) => r.left)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT' }),
    );
    enclave2.prepare(); // ended: no context is made for opening
    expect(Buffer.from(enclave2.open(m, () => true))).toEqual(Buffer.alloc(10, 2));
    // A prepared cipher seals one message: two seals after one prepare use two nonces.
    const sender = createSessionEndpoint('requester', keys, sessionId);
    sender.prepare();
    const x = sender.seal(new Uint8Array(600));
    const y = sender.seal(new Uint8Array(600));
    expect(Buffer.from(x.subarray(10)).equals(Buffer.from(y.subarray(10)))).toBe(false);
    expect(independentOpen(x, 0n).length).toBe(601);
    expect(independentOpen(y, 1n).length).toBe(601);
  });

  it('a context prepared for one number is not used for another (a close sent ahead, a reordered message)', () => {
    const requester = createSessionEndpoint('requester', keys, sessionId);
    const enclave = createSessionEndpoint('enclave', keys, sessionId);
    enclave.prepare(); // for request 0
    requester.seal(new Uint8Array(1)); // 0, dropped on the way
    const later = requester.seal(new Uint8Array(4).fill(9)); // 1
    expect(() => enclave.openReading(later, (r) => r.left)).toThrow(
      expect.objectContaining({ code: 'E_CHANNEL_SEQUENCE' }),
    );
    // A close sealed after the dropped one opens ahead, with a context of its own number.
    expect(Buffer.from(enclave.open(later, () => true, true))).toEqual(Buffer.alloc(4, 9));
    expect(enclave.received).toBe(2n);
    enclave.prepare();
    const next = requester.seal(new Uint8Array(3).fill(4));
    expect(Buffer.from(enclave.open(next))).toEqual(Buffer.alloc(3, 4));
  });
});

describe('session transcript', () => {
  it('addDigests (hashes taken off the latency path) gives the commitment add gives, computed independently', () => {
    const a = new SessionTranscript();
    const b = new SessionTranscript();
    const msgs = [0, 1, 5000].map((n) => [
      new Uint8Array(randomBytes(n + 26)),
      new Uint8Array(randomBytes(n + 27)),
    ]);
    let r: Uint8Array = new Uint8Array(32);
    let s: Uint8Array = new Uint8Array(32);
    for (const [q, p] of msgs) {
      a.add(q!, p!);
      b.addDigests(sha256(q!), sha256(p!));
      r = taggedSha256(TAGS.sessionTranscript, utf8('request'), r, sha256(q!));
      s = taggedSha256(TAGS.sessionTranscript, utf8('response'), s, sha256(p!));
    }
    expect(b.commitment(sessionId, salt)).toBe(a.commitment(sessionId, salt));
    expect(b.opening()).toEqual({ count: 3n, requestsHash: r, responsesHash: s });
    // A digest of the wrong size is refused, and the transcript does not move.
    expect(() => b.addDigests(new Uint8Array(31), new Uint8Array(32))).toThrow();
    expect(b.opening().count).toBe(3n);
  });
});
