import { sessionProofMismatches } from '@firn/client';
import { describe, expect, it } from 'vitest';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// The attack: a requester (careless, or one feeding a tensor map parsed from its own user's JSON)
// sends a session request whose tensor map has an own property named "__proto__" besides the
// model's input. The SDK counts every own tensor's elements into the workUnits it expects; the
// enclave side decodes the binary tensor form into a plain object, where `out["__proto__"] = t`
// sets the map's prototype instead of adding a tensor: the tensor vanishes from the map, the input
// check does not see an unknown input, the model runs, and the child counts fewer units than the
// requester. The requester then refuses an honestly signed proof of exactly what was served (a
// proof whose workUnits differ from its own count), and the extra tensor was silently ignored
// instead of refused. Both ends must agree on the request: decoded maps must not have a prototype.

const { program, open, x, close } = await sessionProgramHarness('proto-tensor', 12);

describe('a tensor named "__proto__" in a session request', () => {
  it('is either refused or counted alike by both ends: the honest proof passes the requester’s check', async () => {
    const { jobId, codec } = await open(false);
    const tensors = JSON.parse(
      '{"x": null, "__proto__": {"type": "float32", "dims": [1, 3], "data": null}}',
    ) as Record<string, { type: 'float32'; dims: number[]; data: Float32Array }>;
    tensors.x = x([1, 2, 3]).x;
    tensors.__proto__!.data = Float32Array.from([9, 9, 9]);
    expect(Object.keys(tensors)).toEqual(['x', '__proto__']);
    const m = codec.sealRequest(tensors);
    const a = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(m).toString('base64'),
    })) as { message: string };
    try {
      codec.openResponse(m, new Uint8Array(Buffer.from(a.message, 'base64')));
    } catch {
      // Refused (unknown input): fine, as long as both ends agree on it.
    }
    const ok = codec.sealRequest(x([4, 5, 6]));
    const b = (await program.handle('sessionRequest', {
      sessionId: jobId,
      message: Buffer.from(ok).toString('base64'),
    })) as { message: string };
    codec.openResponse(ok, new Uint8Array(Buffer.from(b.message, 'base64')));
    const closed = await close(jobId, codec);
    expect(closed.requests).toBe(2);
    expect(sessionProofMismatches(closed.proof, codec)).toEqual([]);
  });
});
