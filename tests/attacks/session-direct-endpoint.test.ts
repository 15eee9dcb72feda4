import { existsSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { sessionProofMismatches } from '@firn/client';
import { parseWorkProofJson } from '@firn/core';
import { type CloseSessionResult, MAX_STREAM_FRAME_BYTES, STREAM_TAG, writeStreamFrame } from '@firn/enclave';
import { describe, expect, it } from 'vitest';
import { sessionProgramHarness } from './sessionProgramHarness.ts';
import { MAX_TOKENLESS_CONNECTIONS } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { SessionRelay } from '../../packages/node/src/jobs/sessionRelay.ts';

// Attacks on the direct session endpoint (docs/decisions/1240-direct-session-endpoint.md): the
// session's runtime serves its requests on a Unix socket; the host relays over one connection.
// The enclave program runs in this process with a runtime whose models serve in-process (the same
// serveSessionEndpoint the image's child runs), so the sockets, framing and crypto are the real ones.

let now = 1_750_000_000;
/** When set, the served session misreports its transcript at close (a child subverted by its model). */
let lie: ((t: { count: bigint; workUnits: bigint }) => void) | undefined;
const { program, open, x } = await sessionProgramHarness('direct', 3, {
  now: () => now,
  onFinish: (t) => lie?.(t),
});
/** A session opened on the child's direct endpoint, a Unix socket (no direct host). */
const openDirect = () => open(true, null);

/** Connect to the endpoint as a stranger; resolves with every byte it got before the socket closed. */
function stranger(path: string, send: (s: Socket) => void): Promise<{ bytes: number; connected: boolean }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let connected = false;
    const s = connect({ path });
    s.on('connect', () => {
      connected = true;
      send(s);
    });
    s.on('data', (d) => {
      bytes += d.length;
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve({ bytes, connected }));
    setTimeout(() => s.destroy(), 2000).unref();
  });
}

describe('attacks on the direct session endpoint', () => {
  it('the socket lies in a private (0700) folder, and only the open result (the host) learns where and the token', async () => {
    const { r, jobId, codec } = await openDirect();
    expect(r.endpoint).toBeDefined();
    expect(statSync(dirname(r.endpoint!.path)).mode & 0o777).toBe(0o700);
    // The session's keys never left the child's side: the enclave process refuses pipe requests.
    await expect(
      program.handle('sessionRequest', { sessionId: jobId, message: 'AAAA' }),
    ).rejects.toMatchObject({
      code: 'E_CONFLICT',
    });
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const q = codec.sealRequest(x([1, 2, 3]));
    codec.openResponse(q, await relay.send(q));
    const c = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(parseWorkProofJson(c.proof).proof.outputCommitment).toBe(codec.commitment());
    relay.close();
  });

  it('a stranger without the token gets no byte and cannot disturb the session; after the host connects nobody else can', async () => {
    const { r, jobId, codec } = await openDirect();
    const path = r.endpoint!.path;
    // A captured-looking request with a wrong token, and raw junk: closed without an answer.
    const wrongToken = await stranger(path, (s) => writeStreamFrame(s, STREAM_TAG.token, new Uint8Array(32)));
    expect(wrongToken).toEqual({ bytes: 0, connected: true });
    const req0 = codec.sealRequest(x([4, 5, 6]));
    const noToken = await stranger(path, (s) => writeStreamFrame(s, STREAM_TAG.message, req0));
    expect(noToken).toEqual({ bytes: 0, connected: true });
    // The host's connection (with the token) still gets in, and the request a stranger tried first
    // is answered normally: the stranger moved nothing.
    const relay = await SessionRelay.connect(path, r.endpoint!.token);
    codec.openResponse(req0, await relay.send(req0));
    // The endpoint stopped listening once the host connected: a second holder of the token is refused.
    expect(existsSync(path)).toBe(false);
    await expect(SessionRelay.connect(path, r.endpoint!.token)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    await program.handle('closeSession', { sessionId: jobId });
    relay.close();
  });

  it('a stranger announcing a full-size first frame is refused from its length prefix, not held until the token timeout', async () => {
    const { r, jobId, codec } = await openDirect();
    const t0 = performance.now();
    // Only a 5-byte header claiming the largest frame a session may carry: the endpoint would
    // gather up to that much from someone who never showed the token. The first frame is the token
    // (tag + 32 bytes), so the prefix alone is enough to refuse it.
    const header = Buffer.alloc(5);
    header.writeUInt32BE(MAX_STREAM_FRAME_BYTES, 0);
    header[4] = STREAM_TAG.token;
    const got = await stranger(r.endpoint!.path, (s) => s.write(header));
    expect(got).toEqual({ bytes: 0, connected: true });
    expect(performance.now() - t0).toBeLessThan(1500);
    // The host still gets in afterwards and is served.
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const q = codec.sealRequest(x([7, 8, 9]));
    codec.openResponse(q, await relay.send(q));
    relay.close();
    await program.handle('closeSession', { sessionId: jobId });
  });

  it(`after ${MAX_TOKENLESS_CONNECTIONS} tokenless tries the endpoint stops listening (no endless guessing)`, async () => {
    const { r, jobId } = await openDirect();
    for (let i = 0; i < MAX_TOKENLESS_CONNECTIONS; i++)
      await stranger(r.endpoint!.path, (s) =>
        writeStreamFrame(s, STREAM_TAG.token, new Uint8Array(32).fill(i)),
      );
    expect(existsSync(r.endpoint!.path)).toBe(false);
    await expect(SessionRelay.connect(r.endpoint!.path, r.endpoint!.token)).rejects.toMatchObject({
      code: 'E_ENCLAVE_UNAVAILABLE',
    });
    // The session answered nothing: no proof.
    await expect(program.handle('closeSession', { sessionId: jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
  });

  it('replayed, reordered and oversized messages through the relay are refused and leave the session in place; an altered one ends it (decision 1715)', async () => {
    const { r, jobId, codec } = await openDirect();
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const a = codec.sealRequest(x([1, 1, 1]));
    codec.openResponse(a, await relay.send(a));
    await expect(relay.send(a)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' }); // replay
    const b = codec.sealRequest(x([2, 2, 2]));
    const c = codec.sealRequest(x([3, 3, 3]));
    await expect(relay.send(c)).rejects.toMatchObject({ code: 'E_CHANNEL_SEQUENCE' }); // reordered
    // Over this enclave's 64 KiB request cap (the host's own cap is 8 MiB).
    const big = Uint8Array.from(b);
    const huge = new Uint8Array(64 * 1024 + 1);
    huge.set(big.subarray(0, 10));
    await expect(relay.send(huge)).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    // Pipelined: b and c sent back to back, answered in order.
    const [rb, rc] = await Promise.all([relay.send(b), relay.send(c)]);
    expect(codec.openResponse(b, rb).y!.dims).toEqual([1, 2]);
    expect(codec.openResponse(c, rc).y!.dims).toEqual([1, 2]);
    // Altered: refused, and the session's receiving side ends (one try, as TLS's bad_record_mac):
    // the genuine message is refused as well.
    const d = codec.sealRequest(x([4, 4, 4]));
    const altered = Uint8Array.from(d);
    altered[altered.length - 1]! ^= 1;
    await expect(relay.send(altered)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    await expect(relay.send(d)).rejects.toMatchObject({
      code: 'E_DECRYPT',
      message: expect.stringMatching(/session ended/),
    });
    // What was answered before is still proven.
    const closed = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(closed.requests).toBe(3);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
    relay.close();
  });

  it('the child answers nothing before the tag checks: an altered request that would not parse is E_DECRYPT, never a parse answer, and ends the session (decisions 1360, 1715)', async () => {
    const { r, jobId, codec } = await openDirect();
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const a = codec.sealRequest(x([1, 2, 3]));
    // Flip the format byte (the first ciphertext byte), then a bit of the FTB1 magic: decoded before
    // the tag check, these would be answered "unknown session payload format" / "missing FTB1
    // header" (E_INPUT_INVALID), an oracle on the plaintext.
    for (const at of [10, 12]) {
      const altered = Uint8Array.from(a);
      altered[at]! ^= 0x40;
      await expect(relay.send(altered)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    }
    // The first forgery ended the session: the genuine request is not answered either.
    await expect(relay.send(a)).rejects.toMatchObject({ code: 'E_DECRYPT' });
    await expect(program.handle('closeSession', { sessionId: jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
    relay.close();
  });

  it('an authentic malformed request is answered; an answer altered on the way is E_DECRYPT at the requester, never a decode error', async () => {
    const { r, jobId, codec } = await openDirect();
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    // An authentic request whose payload is malformed is answered (typed, sealed) and counted.
    const raw = (codec as unknown as { endpoint: { seal(p: Uint8Array): Uint8Array } }).endpoint;
    const malformed = raw.seal(Uint8Array.of(1, 0x46, 0x54, 0x42, 0x31, 1, 0, 0, 0, 200));
    const answer = await relay.send(malformed);
    expect(() => codec.openResponse(malformed, answer)).toThrow(
      expect.objectContaining({ code: 'E_INPUT_INVALID' }),
    );
    // The requester opens an answer before it reads it: an answer altered on the way (its status
    // byte, its FTB1 magic) is E_DECRYPT, never "unknown status" or a decode error; after it the
    // requester's side of the session opens nothing more, the genuine answer included.
    const b = codec.sealRequest(x([4, 5, 6]));
    const answerB = await relay.send(b);
    for (const at of [10, 12]) {
      const altered = Uint8Array.from(answerB);
      altered[at]! ^= 0x40;
      expect(() => codec.openResponse(b, altered)).toThrow(expect.objectContaining({ code: 'E_DECRYPT' }));
    }
    expect(() => codec.openResponse(b, answerB)).toThrow(
      expect.objectContaining({ code: 'E_DECRYPT', message: expect.stringMatching(/session ended/) }),
    );
    const closed = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(closed.requests).toBe(2);
    relay.close();
  });

  it('a forged close is refused and the session keeps serving; only the requester’s close ends it', async () => {
    const { r, jobId, codec } = await openDirect();
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const a = codec.sealRequest(x([1, 0, 1]));
    codec.openResponse(a, await relay.send(a));
    await expect(
      program.handle('closeSession', { sessionId: jobId, auth: Buffer.from(a).toString('base64') }),
    ).rejects.toMatchObject({ code: 'E_UNAUTHENTICATED' });
    const b = codec.sealRequest(x([0, 1, 0]));
    codec.openResponse(b, await relay.send(b));
    const closed = (await program.handle('closeSession', {
      sessionId: jobId,
      auth: Buffer.from(codec.sealClose()).toString('base64'),
    })) as CloseSessionResult;
    expect(closed.requests).toBe(2);
    await expect(relay.send(codec.sealRequest(x([1, 1, 1])))).rejects.toBeInstanceOf(Error);
  });

  it('a host that lets the enclave clock run ahead cannot get a busy direct session dropped as idle', async () => {
    const { r, jobId, codec } = await openDirect();
    const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
    const a = codec.sealRequest(x([1, 2, 3]));
    codec.openResponse(a, await relay.send(a));
    // The enclave process never sees this session's requests: on its clock the session looks idle
    // for longer than the idle limit, but the child answered a request milliseconds ago.
    now += 601;
    const other = await openDirect(); // the open sweeps idle sessions
    const b = codec.sealRequest(x([3, 2, 1]));
    expect(codec.openResponse(b, await relay.send(b)).y!.dims).toEqual([1, 2]);
    const closed = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
    expect(closed.requests).toBe(2);
    await expect(program.handle('closeSession', { sessionId: other.jobId })).rejects.toMatchObject({
      code: 'E_SESSION_EMPTY',
    });
    relay.close();
  });

  it('a session child that misreports its transcript gets a signed proof the requester refuses', async () => {
    for (const forge of [
      (t: { count: bigint; workUnits: bigint }) => {
        t.count += 5n; // claims requests that never happened
      },
      (t: { count: bigint; workUnits: bigint }) => {
        t.workUnits *= 10n; // claims more work
      },
    ]) {
      const { r, jobId, codec } = await openDirect();
      const relay = await SessionRelay.connect(r.endpoint!.path, r.endpoint!.token);
      const a = codec.sealRequest(x([1, 2, 3, 4, 5, 6]));
      codec.openResponse(a, await relay.send(a));
      lie = forge;
      try {
        const closed = (await program.handle('closeSession', { sessionId: jobId })) as CloseSessionResult;
        expect(sessionProofMismatches(closed.proof, codec).length).toBeGreaterThan(0);
      } finally {
        lie = undefined;
        relay.close();
      }
    }
  });
});
