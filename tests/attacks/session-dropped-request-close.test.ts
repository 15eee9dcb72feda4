import { SessionStream, sessionProofMismatches } from '@firn/client';
import { hexBytes } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// The attack: a host (or just a lost connection) drops one of the requester's session requests
// before it reaches the enclave: a direct TCP connection cut after the SDK wrote the request, or a
// relayed POST answered with an error without being forwarded. The SDK's `infer` then fails and,
// as it does on any failed request, closes the session with `codec.sealClose()`: the close tag
// sealed as its NEXT message, one sequence number past the dropped request. The enclave (or the
// session's child) opens the close only at the exact next sequence number it expects, i.e. the
// dropped request's, so the requester's genuine close is refused as E_UNAUTHENTICATED and the
// session keeps running: the requester gets no proof of the requests it WAS served and cannot end
// its own session (its slot stays held until the host's idle close). A dropped request must leave
// the session closable by its requester, with a proof of exactly the requests answered.
// (This drives the SDK's own codec calls in the order `openInferenceSession` makes them.)

const { program, open, x, close } = await sessionProgramHarness('drop-close', 11);

describe('a request dropped before the enclave leaves the session closable by its requester', () => {
  it('direct connection: the request after two answers is lost; the requester’s close is taken and its proof matches', async () => {
    const { jobId, r, codec } = await open(true);
    const d = r.endpoint!.direct!;
    const s = await SessionStream.connectDirect('127.0.0.1', d.port, hexBytes(d.token, 'token', 32));
    for (const v of [
      [1, 2, 3],
      [4, 5, 6],
    ]) {
      const m = codec.sealRequest(x(v));
      codec.openResponse(m, await s.send(m));
    }
    // The third request is sealed (the SDK's infer) and written, but the connection is cut before
    // the child reads it: it never arrives.
    codec.sealRequest(x([7, 8, 9]));
    s.close();
    // The SDK's failed infer closes the session with its next message.
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(2);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });

  it('relayed (pipe) session: a POST the host never forwarded; the requester’s close is taken and its proof matches', async () => {
    const { jobId, codec } = await open(false);
    const m = codec.sealRequest(x([1, 2, 3]));
    const a = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(m).toString('base64'),
    })) as { message: string };
    codec.openResponse(m, new Uint8Array(Buffer.from(a.message, 'base64')));
    // Dropped by the host (a 503 to the requester, never forwarded).
    codec.sealRequest(x([4, 5, 6]));
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(1);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });
});
