import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex, type Hex } from '@firn/core';
import {
  createSessionEndpoint,
  deriveSessionKeys,
  SESSION_FORMAT,
  SessionTranscript,
  sessionPaddedLength,
} from '@firn/crypto';
import { tensorMapToJson } from '@firn/ml';
import { describe, expect, it } from 'vitest';
import { encodeStreamFrame, STREAM_TAG } from '../../packages/enclave/src/protocol.ts';
import {
  answerSessionRequest,
  serveSessionEndpoint,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';

// A malicious host against a requester's inference inputs (sessions, `format: 'json'`).
//
// `SessionEndpoint.openReading` (packages/crypto/src/sessionChannel.ts) hands the enclave's reader
// (`readRequestPayload` -> `parseTensorMap` -> `JSON.parse`) the AES-GCM plaintext of a request
// BEFORE the tag is checked. Errors of an altered message are hidden (E_DECRYPT), but the work the
// parser did on the unauthenticated plaintext is not: a refusal comes back after a full JSON.parse
// of megabytes when the altered plaintext still parses, and at once when it stops parsing at the
// altered byte. AES-GCM is CTR mode: the host XORs any delta into any plaintext byte by XORing the
// ciphertext. A refused message leaves the session unchanged (same sequence number), so the host
// may probe the requester's one message as often as it likes, and the refusal (the direct endpoint's
// tag-1 frame, the pipe path's error) tells it when the parse ended.
//
// Probe for a digit at position i (followed by another digit) and a guess c: XOR ('0'+c) ^ 'e' into
// it. If the digit is c the byte becomes 'e' and "0.7e281..." is still a JSON number: the whole
// request is parsed (slow). Otherwise the byte is not a digit, 'e', '.', ... and parsing stops there
// (fast). Ten probes per digit read the requester's input value off the refusal times.

const sid = bytesToHex(randomBytes(32)) as Hex;
const keys = deriveSessionKeys(new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32)), sid);

/** The requester's sealed JSON-format request (SessionCodec.encodeRequest's layout): format byte, tensor JSON. */
function sealedJsonRequest(data: Float32Array): { message: Uint8Array; plaintext: Uint8Array } {
  const requester = createSessionEndpoint('requester', keys, sid);
  const body = new TextEncoder().encode(
    tensorMapToJson({ x: { type: 'float32', dims: [1, data.length], data } }),
  );
  const plaintext = new Uint8Array(body.length + 1);
  plaintext[0] = SESSION_FORMAT.json;
  plaintext.set(body, 1);
  return { message: requester.seal(plaintext), plaintext };
}

const neverRun = {
  run: async () => {
    throw new Error('the model must never run for a message that does not authenticate');
  },
};

/** The host's oracle: how long the enclave takes to refuse the message with one plaintext byte XORed. */
async function probe(message: Uint8Array, header: number, at: number, delta: number): Promise<number> {
  const enclave = createSessionEndpoint('enclave', keys, sid);
  const m = message.slice();
  m[header + at]! ^= delta;
  const t0 = process.hrtime.bigint();
  let code: unknown;
  try {
    await answerSessionRequest(enclave, neverRun, new SessionTranscript(), m);
  } catch (e) {
    code = (e as { code?: string }).code;
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e6;
  // Every probe is refused as a message that does not authenticate: nothing else is said to the host.
  expect(code).toBe('E_DECRYPT');
  expect(enclave.received).toBe(0n);
  return dt;
}

describe('a host reads a requester JSON session input off refusal times (parse before authentication)', () => {
  it('the enclave does not parse the plaintext of a request that does not authenticate', async () => {
    const data = Float32Array.from({ length: 64 }, (_, i) => i / 7);
    const { message } = sealedJsonRequest(data);
    const seen: string[] = [];
    const parse = JSON.parse;
    JSON.parse = ((text: string, ...rest: unknown[]) => {
      seen.push(String(text));
      return (parse as (t: string, ...r: unknown[]) => unknown)(text, ...rest);
    }) as typeof JSON.parse;
    try {
      const enclave = createSessionEndpoint('enclave', keys, sid);
      const m = message.slice();
      // Flip one plaintext bit in the middle of the tensor JSON (ciphertext bit at the same offset).
      m[m.length - 16 - 40]! ^= 0x01;
      await expect(answerSessionRequest(enclave, neverRun, new SessionTranscript(), m)).rejects.toMatchObject(
        { code: 'E_DECRYPT' },
      );
    } finally {
      JSON.parse = parse;
    }
    // Safe outcome: no attacker-altered plaintext reached a parser.
    expect(seen).toEqual([]);
  });

  it('the refusal time of altered copies of one request does not reveal the digits of its input', async () => {
    // The requester's secret input: its first element, then ~200k more values (a few MB of JSON).
    const secret = Math.fround(0.7281934);
    const rest = Float32Array.from({ length: 200_000 }, (_, i) => Math.fround(Math.sin(i) * 3));
    const data = new Float32Array(rest.length + 1);
    data[0] = secret;
    data.set(rest, 1);
    const { message, plaintext } = sealedJsonRequest(data);
    // The wire header: the message is header, the padded plaintext (decision 1735), the tag.
    const header = message.length - 16 - sessionPaddedLength(plaintext.length);
    // What the host knows: the JSON layout up to the first value (name, dims and type are the
    // requester's public shape; the prefix below is the same for any values).
    const prefix = `{"x":{"dims":[1,${data.length}],"type":"float32","data":[`;
    const first = 1 + prefix.length;
    const truth = String(secret); // "0.7281934..." as JSON.stringify writes the widened float32
    expect(new TextDecoder().decode(plaintext.subarray(first, first + truth.length))).toBe(truth);

    // Warm up the parser and the cipher.
    for (let i = 0; i < 3; i++) await probe(message, header, plaintext.length, 0x01); // a tag byte

    const median = async (at: number, delta: number, n = 7) => {
      const t: number[] = [];
      for (let i = 0; i < n; i++) t.push(await probe(message, header, at, delta));
      return t.sort((a, b) => a - b)[n >> 1]!;
    };
    // A tag byte altered: the plaintext is intact and parses to the end before the refusal.
    // The format byte altered: the reader stops at once. Both are the same refusal to the host.
    // Measured in turns (whole, early, whole, ...), so a pause of the process (a collection, another
    // process on the core) weighs on both sides alike, as it would for the host's own probes.
    const wholeTimes: number[] = [];
    const earlyTimes: number[] = [];
    for (let i = 0; i < 15; i++) {
      wholeTimes.push(await probe(message, header, plaintext.length, 0x01));
      earlyTimes.push(await probe(message, header, 0, 0x01));
    }
    const mid = (t: number[]) => t.sort((a, b) => a - b)[t.length >> 1]!;
    const whole = mid(wholeTimes);
    const early = mid(earlyTimes);

    const recovered: number[] = [];
    // Digits after "0.7": positions first+3 .. first+8 (each followed by another digit).
    for (let pos = first + 3; pos < first + 9; pos++) {
      const times: number[] = [];
      for (let c = 0; c <= 9; c++) times.push(await median(pos, (0x30 + c) ^ 0x65, 3)); // digit c -> 'e'
      recovered.push(times.indexOf(Math.max(...times)));
    }
    const actual = truth
      .slice(3, 9)
      .split('')
      .map((d) => Number(d));
    console.log(
      `refusal after a whole parse ${whole.toFixed(2)} ms, after an early stop ${early.toFixed(2)} ms; ` +
        `digits read off the timings ${recovered.join('')}, the input's ${actual.join('')}`,
    );
    // Safe outcome: a refusal takes the same time whatever the (unauthenticated) plaintext held.
    expect(whole / early).toBeLessThan(2);
  }, 120_000);

  it('through the session child socket: the host reads the digits off the tag-1 refusal frames', async () => {
    // The warm session's child endpoint as the host reaches it (Unix socket, token frame, message
    // frames; a refusal comes back as a tag-1 frame). The host holds the requester's sealed request.
    const dir = mkdtempSync(join(tmpdir(), 'firn-parse-oracle-'));
    const served = await serveSessionEndpoint(neverRun, {
      sessionId: sid,
      keys,
      expiresInMs: 600_000,
      maxRequestBytes: 8 * 1024 * 1024,
      socketDir: dir,
    });
    const sock = connect(served.address.path);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let buf = Buffer.alloc(0);
    let waiter: ((tag: number) => void) | undefined;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const tag = buf[4]!;
        buf = buf.subarray(4 + len);
        const w = waiter;
        waiter = undefined;
        w?.(tag);
      }
    });
    const send = (tag: number, body: Uint8Array) => {
      for (const part of encodeStreamFrame(tag, body)) sock.write(part);
    };
    send(STREAM_TAG.token, Buffer.from(served.address.token.slice(2), 'hex'));
    try {
      const secret = Math.fround(0.4619372);
      const data = Float32Array.from({ length: 200_001 }, (_, i) => Math.fround(Math.cos(i) * 5));
      data[0] = secret;
      const { message, plaintext } = sealedJsonRequest(data);
      // The wire header: the message is header, the padded plaintext (decision 1735), the tag.
      const header = message.length - 16 - sessionPaddedLength(plaintext.length);
      const first = 1 + `{"x":{"dims":[1,${data.length}],"type":"float32","data":[`.length;
      const truth = String(secret);
      const probeSocket = async (at: number, delta: number): Promise<number> => {
        const m = Buffer.from(message);
        m[header + at]! ^= delta;
        const answered = new Promise<number>((r) => {
          waiter = r;
        });
        const t0 = process.hrtime.bigint();
        send(STREAM_TAG.message, m);
        const tag = await answered;
        expect(tag).toBe(STREAM_TAG.error); // refused, session unchanged
        return Number(process.hrtime.bigint() - t0) / 1e6;
      };
      for (let i = 0; i < 3; i++) await probeSocket(plaintext.length, 0x01);
      const recovered: number[] = [];
      for (let pos = first + 3; pos < first + 8; pos++) {
        const times: number[] = [];
        for (let c = 0; c <= 9; c++) {
          const samples: number[] = [];
          for (let r = 0; r < 5; r++) samples.push(await probeSocket(pos, (0x30 + c) ^ 0x65));
          samples.sort((a, b) => a - b);
          times.push(samples[2]!);
        }
        recovered.push(times.indexOf(Math.max(...times)));
      }
      const actual = truth
        .slice(3, 8)
        .split('')
        .map((d) => Number(d));
      // Safe outcome: refusal frames come back after the same work whatever the plaintext.
      expect(recovered).not.toEqual(actual);
    } finally {
      sock.destroy();
      served.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
