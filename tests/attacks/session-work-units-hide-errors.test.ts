import { randomBytes } from 'node:crypto';
import { bytesToHex, type Hex, type WorkProofJson, workProofToJson } from '@firn/core';
import {
  createSessionEndpoint,
  deriveSessionKeys,
  SESSION_SALT_BYTES,
  SESSION_SECRET_BYTES,
  SessionTranscript,
} from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { SessionCodec, sessionProofMismatches } from '../../packages/client/src/openInferenceSession.ts';
import { answerSessionRequest } from '../../packages/enclave/src/runtime/sessionEndpoint.ts';
import { loadOnnxModel } from '../../packages/ml/src/inference.ts';
import { encodeOnnxModel } from '../../packages/ml/src/onnxProto.ts';

// Decision 1735 pads an error answer to its ok answer's length so that the host relaying a
// session cannot tell which requests failed on a secret value (its own example: a Gather index out
// of range, refused by onnxruntime at run time). But the session's Work Proof, which the enclave
// signs at close and the node submits on chain (public to everyone), carried `workUnits` = the
// input elements of the requests answered WITHOUT error (answerSessionRequest set units to 0 on any
// error). The host can close a session without the requester (its idle close needs no auth)
// whenever it likes, e.g. after the one request it is curious about, and read workUnits from the
// proof; and every chain observer reads it at the end of any session. Same-shaped requests whose
// only difference is a secret value then gave different workUnits: the padding was undone.
//
// Safe behaviour (docs/decisions/1774-work-units-from-decoded-inputs.md): the units of a request
// that authenticated and decoded do not depend on whether the model refused its values; the
// requester counts the same, so an honest session with errors still checks and a node that claims
// more is still caught.

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

/** A Work Proof of session `jobId` with this transcript commitment and workUnits (unsigned: only its fields are compared). */
function proofOf(jobId: Hex, outputCommitment: Hex, workUnits: bigint): WorkProofJson {
  const h = bytesToHex(new Uint8Array(32).fill(1)) as Hex;
  return workProofToJson(
    {
      jobId,
      enclaveId: h,
      measurement: h,
      workloadHash: h,
      inputCommitment: h,
      outputCommitment,
      startedAt: 1n,
      finishedAt: 2n,
      workUnits,
    },
    `0x${'11'.repeat(65)}` as Hex,
    { chainId: 31337, jobMarket: '0x00000000000000000000000000000000000000aa' },
    '0x00000000000000000000000000000000000000bb',
  );
}

/** One session with one lookup; what the host sees: the sealed lengths and the proof's work units. */
async function oneLookup(indices: bigint[]) {
  const onnx = await loadOnnxModel(gatherModel());
  try {
    const secret = new Uint8Array(randomBytes(SESSION_SECRET_BYTES));
    const salt = new Uint8Array(randomBytes(SESSION_SALT_BYTES));
    const id = bytesToHex(new Uint8Array(randomBytes(32))) as Hex;
    const enclave = createSessionEndpoint('enclave', deriveSessionKeys(secret, salt, id), id);
    const requester = new SessionCodec(secret, salt, id, 'binary');
    const transcript = new SessionTranscript();
    const request = requester.sealRequest({
      i: { type: 'int64', dims: [indices.length], data: BigInt64Array.from(indices) },
    });
    const { sealed, units } = await answerSessionRequest(enclave, onnx, transcript, request);
    const response = Buffer.concat(sealed);
    let failed: string | undefined;
    try {
      requester.openResponse(request, response);
    } catch (e) {
      failed = (e as { code?: string }).code;
    }
    return {
      request: request.length,
      response: response.length,
      workUnits: units,
      failed,
      requesterUnits: requester.workUnits,
      proofFor: (workUnits: bigint) => proofOf(id, requester.commitment(), workUnits),
      requester,
    };
  } finally {
    await onnx.release();
  }
}

describe('attack: the session proof’s workUnits tell which requests failed on a secret value', () => {
  it('an in-range and an out-of-range lookup of one shape give one length AND one workUnits', async () => {
    const ok = await oneLookup([1n, 2n, 3n, 4n]);
    const bad = await oneLookup([1n, 2n, 3n, 99n]);
    expect(ok.failed).toBeUndefined();
    expect(bad.failed).toBe('E_INPUT_INVALID');
    // What 1735 already hides:
    expect(bad.request).toBe(ok.request);
    expect(bad.response).toBe(ok.response);
    // What the signed, public Work Proof still shows:
    expect(bad.workUnits).toBe(ok.workUnits);
  });

  it('the requester counts an error answer as the enclave does: an honest proof checks, a larger claim does not', async () => {
    for (const indices of [
      [1n, 2n, 3n, 4n],
      [1n, 2n, 3n, 99n],
    ]) {
      const r = await oneLookup(indices);
      expect(r.requesterUnits).toBe(r.workUnits);
      expect(r.workUnits).toBe(4n);
      expect(sessionProofMismatches(r.proofFor(r.workUnits), r.requester)).toEqual([]);
      expect(sessionProofMismatches(r.proofFor(r.workUnits + 1n), r.requester)).toEqual([
        'workUnits differ from the requester’s own count',
      ]);
    }
  });
});
