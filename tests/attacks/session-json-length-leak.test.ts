import { randomBytes } from 'node:crypto';
import { bytesToHex, type Hex } from '@firn/core';
import {
  createSessionEndpoint,
  deriveSessionKeys,
  SESSION_SALT_BYTES,
  SESSION_SECRET_BYTES,
  SessionTranscript,
} from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { type SessionFormat, SessionCodec } from '../../packages/client/src/openInferenceSession.ts';
import {
  answerSessionRequest,
  type EndpointModel,
} from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { loadOnnxModel } from '../../packages/ml/src/inference.ts';
import { encodeOnnxModel } from '../../packages/ml/src/onnxProto.ts';

// A malicious host relaying a warm inference session in the JSON format (`format: 'json'`,
// openInferenceSession's option; the host relays every message and sees its length).
//
// Session messages are AES-GCM with no padding (sessionChannel.ts seal/sealParts): the ciphertext
// is exactly as long as the plaintext. In the JSON format the plaintext is the tensors' decimal
// text: the requester's request is `jsonRequestBody` (openInferenceSession.ts) and the enclave's
// answer `encodeResponsePayloadParts` -> tensorMapToJson (sessionEndpoint.ts), and the length of a
// number's shortest decimal form depends on its value. So the host reads, off the frame lengths
// alone, how "round" every input and output value is: here, which of a ReLU model's outputs are 0
// (i.e. the sign of each input), and the digit count of the requester's inputs. Artifacts have
// padding for this reason (docs/decisions/0872); session messages have none.
const reluModel = () =>
  encodeOnnxModel({
    name: 'relu',
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
    initializers: [],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', 4] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', 4] }],
  });

async function session() {
  const onnx = await loadOnnxModel(reluModel());
  const model = {
    async run(inputs: Parameters<typeof onnx.run>[0]) {
      const out = await onnx.run(inputs);
      return Object.fromEntries(
        Object.entries(out).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: t.data }]),
      );
    },
  };
  const secret = new Uint8Array(randomBytes(SESSION_SECRET_BYTES));
  const salt = new Uint8Array(randomBytes(SESSION_SALT_BYTES));
  const id = bytesToHex(new Uint8Array(randomBytes(32))) as Hex;
  const enclave = createSessionEndpoint('enclave', deriveSessionKeys(secret, salt, id), id);
  const requester = new SessionCodec(secret, salt, id, 'json');
  const transcript = new SessionTranscript();
  /** One request as the host sees it: the lengths of the two messages it relays. */
  const exchange = async (x: number[]) => {
    const request = requester.sealRequest({
      x: { type: 'float32', dims: [1, 4], data: Float32Array.from(x) },
    });
    const { sealed } = await answerSessionRequest(enclave, model, transcript, request);
    const response = Buffer.concat(sealed);
    requester.openResponse(request, response);
    return { request: request.length, response: response.length };
  };
  return { exchange, release: () => onnx.release() };
}

describe('message lengths of a JSON-format session', () => {
  it('do not depend on the values of the requester’s inputs or the model’s outputs', async () => {
    const s = await session();
    try {
      // Same shapes, same model: only the secret values differ.
      const positive = await s.exchange([0.1, 0.2, 0.3, 0.4]);
      const signs = await s.exchange([0.1, -0.2, 0.3, -0.4]);
      const negative = await s.exchange([-0.1, -0.2, -0.3, -0.4]);
      // The host learns how many of the outputs are zero (the inputs' signs)...
      expect(new Set([positive.response, signs.response, negative.response]).size).toBe(1);
      // ...and the digits of the inputs themselves.
      const round = await s.exchange([1, 2, 3, 4]);
      expect(round.request).toBe(positive.request);
    } finally {
      await s.release();
    }
  });
});

// Whether a request ended in an error showed in the answer's length too, in both formats: an error
// answer was the short JSON {code, message}, an ok answer the outputs. Here the error depends on a
// secret value (a Gather index out of the table's range: onnxruntime refuses it at run time), so the
// host would learn, off one length, whether the requester's index was in range.
const gatherModel = () =>
  encodeOnnxModel({
    name: 'lookup',
    nodes: [{ opType: 'Gather', inputs: ['T', 'i'], outputs: ['y'] }],
    initializers: [
      { name: 'T', dims: [16, 8], dtype: 'float', data: Float32Array.from({ length: 128 }, (_, k) => k / 7) },
    ],
    inputs: [{ name: 'i', elemType: 'int64', shape: ['N'] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', 8] }],
  });

async function lookupSession(format: SessionFormat, declares: boolean) {
  const onnx = await loadOnnxModel(gatherModel());
  // As the session child serves it (the OnnxModel itself), or a model that declares no output shapes.
  const model: EndpointModel = declares ? onnx : { run: (inputs) => onnx.run(inputs) };
  const secret = new Uint8Array(randomBytes(SESSION_SECRET_BYTES));
  const salt = new Uint8Array(randomBytes(SESSION_SALT_BYTES));
  const id = bytesToHex(new Uint8Array(randomBytes(32))) as Hex;
  const enclave = createSessionEndpoint('enclave', deriveSessionKeys(secret, salt, id), id);
  const requester = new SessionCodec(secret, salt, id, format);
  const transcript = new SessionTranscript();
  /** One lookup as the host sees it (the two lengths), and what the requester got. */
  const exchange = async (indices: bigint[]) => {
    const request = requester.sealRequest({
      i: { type: 'int64', dims: [indices.length], data: BigInt64Array.from(indices) },
    });
    const { sealed } = await answerSessionRequest(enclave, model, transcript, request);
    const response = Buffer.concat(sealed);
    let failed: string | undefined;
    try {
      requester.openResponse(request, response);
    } catch (e) {
      failed = (e as { code?: string }).code;
    }
    return { request: request.length, response: response.length, failed };
  };
  return { exchange, release: () => onnx.release() };
}

describe('message lengths of a session whose request fails on a secret value', () => {
  for (const format of ['binary', 'json'] as const)
    for (const batch of [1, 64])
      it(`an error answer and an ok answer to same-shaped requests have one sealed length (${format}, batch ${batch})`, async () => {
        const s = await lookupSession(format, true);
        try {
          const inRange = Array.from({ length: batch }, (_, k) => BigInt(k % 16));
          const outOfRange = [...inRange.slice(1), 99n];
          // The error first: nothing about this shape was answered before.
          const error = await s.exchange(outOfRange);
          const ok = await s.exchange(inRange);
          const again = await s.exchange(outOfRange);
          expect(error.failed).toBe('E_INPUT_INVALID');
          expect(again.failed).toBe('E_INPUT_INVALID');
          expect(ok.failed).toBeUndefined();
          expect(error.request).toBe(ok.request);
          expect(error.response).toBe(ok.response);
          expect(again.response).toBe(ok.response);
        } finally {
          await s.release();
        }
      });

  it('a model that declares no output shapes: an error after an ok answer of that shape has its length', async () => {
    for (const format of ['binary', 'json'] as const) {
      const s = await lookupSession(format, false);
      try {
        const inRange = Array.from({ length: 64 }, (_, k) => BigInt(k % 16));
        const ok = await s.exchange(inRange);
        const error = await s.exchange([...inRange.slice(1), -99n]);
        expect(ok.failed).toBeUndefined();
        expect(error.failed).toBe('E_INPUT_INVALID');
        expect(error.response).toBe(ok.response);
      } finally {
        await s.release();
      }
    }
  });

  it('the close request has the sealed length of a small request', () => {
    const secret = new Uint8Array(randomBytes(SESSION_SECRET_BYTES));
    const salt = new Uint8Array(randomBytes(SESSION_SALT_BYTES));
    const id = bytesToHex(new Uint8Array(randomBytes(32))) as Hex;
    for (const format of ['binary', 'json'] as const) {
      const requester = new SessionCodec(secret, salt, id, format);
      const request = requester.sealRequest({ i: { type: 'int64', dims: [1], data: BigInt64Array.of(3n) } });
      expect(requester.sealClose().length).toBe(request.length);
    }
  });
});
