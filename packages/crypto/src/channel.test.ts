import { encodeFields, isFirnError, padmeLength, TAGS, u64be, utf8 } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  acceptChannel,
  CHANNEL_HEADER_BYTES,
  CHANNEL_MIN_PADDED_BYTES,
  channelMessageToBase64,
  channelPaddedLength,
  channelMessageToHex,
  decodeChannelMessage,
  encodeChannelMessage,
  MAX_CHANNEL_STREAM_BODY_BYTES,
  openChannel,
} from './channel.ts';
import { createRecipientContext, createSenderContext, generateKemKeyPair } from './hpke.ts';

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    return isFirnError(e) ? e.code : `foreign:${String(e)}`;
  }
}

async function pair(info = utf8('job-1')) {
  const k = await generateKemKeyPair();
  const req = await openChannel(k.publicKey, { info });
  const enc = await acceptChannel(k.privateKey, req.enc, { info });
  return { k, req, enc };
}

// Not covered here: binding of the KEM key to attestation evidence (the caller's job) and
// concurrency across processes.
describe('attested channel', () => {
  it('carries requests, responses and events in order, through bytes, base64 and hex', async () => {
    const { req, enc } = await pair();
    for (let i = 0; i < 3; i++) {
      const m = await req.sealRequest(utf8(`req ${i}`), utf8('aad'));
      expect(decodeChannelMessage(m).seq).toBe(BigInt(i));
      expect(await enc.openRequest(channelMessageToBase64(m), utf8('aad'))).toEqual(utf8(`req ${i}`));
    }
    const r0 = enc.sealResponse(utf8('resp 0'));
    const e0 = enc.sealEvent(utf8('epoch 1'));
    const e1 = enc.sealEvent(utf8('epoch 2'));
    expect(decodeChannelMessage(e1)).toMatchObject({ kind: 'event', seq: 1n });
    expect(await req.openEvent(channelMessageToHex(e0))).toEqual(utf8('epoch 1'));
    expect(await req.openEvent(e1)).toEqual(utf8('epoch 2'));
    expect(await req.openResponse(r0)).toEqual(utf8('resp 0'));
    const m = decodeChannelMessage(r0);
    expect(encodeChannelMessage(m)).toEqual(r0);
  });

  it('refuses dropped, replayed and reordered messages without advancing', async () => {
    const { req, enc } = await pair();
    const q0 = await req.sealRequest(utf8('a'));
    const q1 = await req.sealRequest(utf8('b'));
    expect(await code(enc.openRequest(q1))).toBe('E_CHANNEL_SEQUENCE');
    expect(await enc.openRequest(q0)).toEqual(utf8('a'));
    expect(await code(enc.openRequest(q0))).toBe('E_CHANNEL_SEQUENCE');
    expect(await enc.openRequest(q1)).toEqual(utf8('b'));
    const r0 = enc.sealResponse(utf8('x'));
    const r1 = enc.sealResponse(utf8('y'));
    expect(await code(req.openResponse(r1))).toBe('E_CHANNEL_SEQUENCE');
    expect(await req.openResponse(r0)).toEqual(utf8('x'));
    expect(await code(req.openResponse(r0))).toBe('E_CHANNEL_SEQUENCE');
    // An event is not a response, even at the right number.
    expect(await code(req.openResponse(enc.sealEvent(utf8('e'))))).toBe('E_CHANNEL_SEQUENCE');
  });

  it('refuses altered messages, a forged sequence number, a wrong aad and a foreign channel', async () => {
    const { req, enc } = await pair();
    const q0 = await req.sealRequest(utf8('hello'));
    for (let i = 10; i < q0.length; i += 3) {
      const bad = q0.slice();
      bad[i]! ^= 1;
      expect(await code(enc.openRequest(bad))).toBe('E_DECRYPT');
    }
    expect(await enc.openRequest(q0)).toEqual(utf8('hello'));
    const r0 = enc.sealResponse(utf8('x'), utf8('aad'));
    expect(await code(req.openResponse(r0))).toBe('E_DECRYPT');
    const r1 = enc.sealResponse(utf8('y'));
    // Rewrite r1's visible seq to 0: the nonce and aad no longer match, so it fails to decrypt.
    const forged = r1.slice();
    forged[9] = 0;
    expect(await code(req.openResponse(forged))).toBe('E_DECRYPT');
    // A message from another channel at the expected number fails authentication.
    const other = await pair();
    expect(await code(req.openResponse(other.enc.sealResponse(utf8('z'))))).toBe('E_DECRYPT');
    expect(await req.openResponse(r0, utf8('aad'))).toEqual(utf8('x'));
    expect(await req.openResponse(r1)).toEqual(utf8('y'));
  });

  it('binds info: a different info on the enclave side cannot read requests', async () => {
    const k = await generateKemKeyPair();
    const req = await openChannel(k.publicKey, { info: utf8('a') });
    const enc = await acceptChannel(k.privateKey, req.enc, { info: utf8('b') });
    expect(await code(enc.openRequest(await req.sealRequest(utf8('x'))))).toBe('E_DECRYPT');
  });

  it('rejects garbage messages with a parse error', async () => {
    const { req } = await pair();
    expect(await code(req.openResponse('not base64!'))).toBe('E_PARSE');
    expect(await code(req.openResponse(new Uint8Array(5)))).toBe('E_PARSE');
    expect(await code(req.openResponse(Uint8Array.of(9, 2, ...new Array(30).fill(0))))).toBe('E_PARSE');
    expect(await code(() => decodeChannelMessage(new Uint8Array(16 * 1024 * 1024 + 1)))).toBe('E_PARSE');
  });
});

describe('channel replay of a request to the enclave', () => {
  it('a second acceptance of the same enc answers under a new key: no key and nonce reuse', async () => {
    const { generateKemKeyPair } = await import('./hpke.ts');
    const { acceptChannel, decodeChannelMessage, openChannel } = await import('./channel.ts');
    const kp = await generateKemKeyPair();
    const req = await openChannel(kp.publicKey);
    const first = await acceptChannel(kp.privateKey, req.enc);
    const replay = await acceptChannel(kp.privateKey, req.enc);
    const a = decodeChannelMessage(first.sealResponse(new Uint8Array(32).fill(1)));
    const b = decodeChannelMessage(replay.sealResponse(new Uint8Array(32).fill(2)));
    expect(a.seq).toBe(b.seq);
    expect(Buffer.from(a.salt!)).not.toEqual(Buffer.from(b.salt!));
    // XOR of the two ciphertexts would equal the XOR of the plaintexts under a reused key and nonce.
    const x = a.ciphertext.subarray(0, 32).map((v, i) => v ^ b.ciphertext[i]!);
    expect(Buffer.from(x)).not.toEqual(Buffer.alloc(32, 3));
  });

  it('the requester refuses a response from another acceptance after the first', async () => {
    const { generateKemKeyPair } = await import('./hpke.ts');
    const { acceptChannel, openChannel } = await import('./channel.ts');
    const kp = await generateKemKeyPair();
    const req = await openChannel(kp.publicKey);
    const first = await acceptChannel(kp.privateKey, req.enc);
    const replay = await acceptChannel(kp.privateKey, req.enc);
    await req.openResponse(first.sealResponse(new Uint8Array(4)));
    replay.sealResponse(new Uint8Array(4));
    await expect(req.openResponse(replay.sealResponse(new Uint8Array(4)))).rejects.toMatchObject({
      code: 'E_CHANNEL_SEQUENCE',
    });
  });
});

// docs/decisions/1850-job-channel-messages-padded.md: every channel plaintext is padded inside the
// AEAD, so the host relaying a job's request, events and summary learns a size bucket only.
describe('channel padding', () => {
  /** The channel's HPKE info and AAD, built here from the spec, not from channel.ts. */
  const infoOf = (info: Uint8Array) => encodeFields([utf8(TAGS.channel), info]);
  const aadOf = (kind: number, seq: bigint) =>
    encodeFields([Uint8Array.of(1, kind), u64be(seq), new Uint8Array(0)]);

  it('gives bodies of 0 to CHANNEL_MIN_PADDED_BYTES - 1 bytes one sealed length, per kind', async () => {
    const { req, enc } = await pair();
    const lengths = { request: new Set<number>(), response: new Set<number>(), event: new Set<number>() };
    for (const n of [0, 1, 3, 100, 1000, CHANNEL_MIN_PADDED_BYTES - 1]) {
      const body = new Uint8Array(n).fill(7);
      const q = await req.sealRequest(body);
      lengths.request.add(q.length);
      expect(await enc.openRequest(q)).toEqual(body);
      const r = enc.sealResponse(body);
      lengths.response.add(r.length);
      expect(await req.openResponse(r)).toEqual(body);
      const e = enc.sealEvent(body);
      lengths.event.add(e.length);
      expect(await req.openEvent(e)).toEqual(body);
    }
    expect([...lengths.request]).toEqual([CHANNEL_HEADER_BYTES + CHANNEL_MIN_PADDED_BYTES + 16]);
    expect([...lengths.response]).toEqual([CHANNEL_HEADER_BYTES + 16 + CHANNEL_MIN_PADDED_BYTES + 16]);
    expect([...lengths.event]).toEqual([...lengths.response]);
    // Above the floor: Padmé buckets (0872), a body whose padding needs one byte is in the next one.
    expect(channelPaddedLength(CHANNEL_MIN_PADDED_BYTES)).toBe(padmeLength(CHANNEL_MIN_PADDED_BYTES + 1));
    expect(channelPaddedLength(5000)).toBe(5120);
    const big = enc.sealEvent(new Uint8Array(5000).fill(1));
    expect(big.length).toBe(CHANNEL_HEADER_BYTES + 16 + 5120 + 16);
    expect(await req.openEvent(big)).toEqual(new Uint8Array(5000).fill(1));
    // Capped at what one message carries; one byte more is refused as before.
    expect(channelPaddedLength(MAX_CHANNEL_STREAM_BODY_BYTES)).toBe(MAX_CHANNEL_STREAM_BODY_BYTES + 1);
    expect(await code(() => enc.sealEvent(new Uint8Array(MAX_CHANNEL_STREAM_BODY_BYTES + 1)))).toBe(
      'E_INVALID_INPUT',
    );
  });

  it('puts body || 0x80 || zeros under the AEAD (read with an HPKE context of its own)', async () => {
    const k = await generateKemKeyPair();
    const info = utf8('job-pad');
    const req = await openChannel(k.publicKey, { info });
    const q = await req.sealRequest(utf8('{"v":1}'));
    const m = decodeChannelMessage(q);
    const ctx = await createRecipientContext(k.privateKey, req.enc, { info: infoOf(info) });
    const pt = await ctx.open(m.ciphertext, aadOf(1, 0n));
    expect(pt.length).toBe(CHANNEL_MIN_PADDED_BYTES);
    expect(Buffer.from(pt.subarray(0, 7)).toString()).toBe('{"v":1}');
    expect(pt[7]).toBe(0x80);
    expect(pt.subarray(8).every((b) => b === 0)).toBe(true);
  });

  it('refuses a request whose padding is malformed under a valid tag (E_DECRYPT, nothing read)', async () => {
    for (const bad of [
      new Uint8Array(0),
      utf8('{"v":1}'),
      Uint8Array.of(1, 2, 3, 0, 0),
      Uint8Array.of(0x80, 0, 0x01),
      new Uint8Array(64),
    ]) {
      const k = await generateKemKeyPair();
      const info = utf8('job-pad');
      // A requester (the only one who can make one) sealing a plaintext without the padding.
      const sender = await createSenderContext(k.publicKey, { info: infoOf(info) });
      const ct = await sender.seal(bad, aadOf(1, 0n));
      const message = encodeChannelMessage({ kind: 'request', seq: 0n, ciphertext: ct });
      const enc = await acceptChannel(k.privateKey, sender.enc, { info });
      expect(await code(enc.openRequest(message))).toBe('E_DECRYPT');
    }
  });
});
