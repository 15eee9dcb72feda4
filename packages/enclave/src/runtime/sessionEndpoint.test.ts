import { FirnError } from '@firn/core';
import { MAX_SESSION_MESSAGE_BYTES, SESSION_FORMAT, SESSION_STATUS } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import {
  encodeResponsePayload,
  errorPayload,
  MAX_ERROR_PAYLOAD_BYTES,
  responsePayloadLength,
} from './sessionEndpoint.ts';

// The payload lengths an error answer is padded to (docs/decisions/1735-session-messages-padded.md).
describe('session answer payload lengths', () => {
  const arrays = {
    float32: (n: number) => Float32Array.from({ length: n }, (_, k) => (k % 3 === 0 ? -1e-38 : k / 3)),
    float64: (n: number) => Float64Array.from({ length: n }, (_, k) => -k * Math.PI),
    int32: (n: number) => Int32Array.from({ length: n }, (_, k) => -k * 1000),
    int64: (n: number) => BigInt64Array.from({ length: n }, (_, k) => BigInt(k) * -(1n << 60n)),
    uint8: (n: number) => Uint8Array.from({ length: n }, (_, k) => k % 256),
    bool: (n: number) => Uint8Array.from({ length: n }, (_, k) => k % 2),
  };

  it('responsePayloadLength is the length encodeResponsePayload gives, in both formats, for any values', () => {
    const shapes = [[], [0], [1], [3, 4], [2, 0, 5], [1, 64, 3]];
    for (const [type, make] of Object.entries(arrays))
      for (const dims of shapes)
        for (const name of ['y', 'ünïcode "out"'])
          for (const format of [SESSION_FORMAT.binary, SESSION_FORMAT.json]) {
            const n = dims.reduce((a, b) => a * b, 1);
            const outputs = {
              [name]: { type, dims, data: make(n) },
              z: { type: 'uint8', dims: [2], data: arrays.uint8(2) },
            };
            const want = encodeResponsePayload(format, outputs).length;
            expect(responsePayloadLength(format, outputs), `${type} [${dims}] ${format}`).toBe(want);
          }
  });

  it('is undefined for an element type the encoders refuse, and the cap for outputs over it', () => {
    expect(
      responsePayloadLength(SESSION_FORMAT.binary, { s: { type: 'string', dims: [1] } }),
    ).toBeUndefined();
    expect(responsePayloadLength(SESSION_FORMAT.json, { y: { type: 'float32', dims: [1 << 20, 8] } })).toBe(
      MAX_SESSION_MESSAGE_BYTES,
    );
  });

  it('an error payload fits the padding minimum: a long message is cut, the JSON stays whole', () => {
    const long = new FirnError('E_INPUT_INVALID', `input "${'ü'.repeat(400)}": wrong shape`);
    const p = errorPayload(long);
    expect(p.length).toBeLessThanOrEqual(MAX_ERROR_PAYLOAD_BYTES);
    expect(p[0]).toBe(SESSION_STATUS.error);
    const body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(p.subarray(1)));
    expect(body.code).toBe('E_INPUT_INVALID');
    expect(body.message).toMatch(/^input "ü+\.\.\.$/);
    // A short one is untouched.
    const short = errorPayload(new FirnError('E_INPUT_INVALID', 'bad'));
    expect(JSON.parse(new TextDecoder().decode(short.subarray(1)))).toEqual({
      code: 'E_INPUT_INVALID',
      message: 'bad',
    });
  });
});
