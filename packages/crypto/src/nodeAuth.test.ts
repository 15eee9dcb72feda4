import { bytesToHex, type Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { nodeSubmissionDigest, sessionClosePlaintext, uploadIntentDigest } from './nodeAuth.ts';
import { generateSigningKey, recoverAddress, signDigest } from './signatures.ts';

// The signer a node recovers is the requester only for exactly the request signed: any other
// route, node, deployment or body field recovers to some other address (and is refused, 403).
const h = (b: number, n = 32) => `0x${b.toString(16).padStart(2, '0').repeat(n)}` as Hex;
const scope = { chainId: 31337, jobMarket: h(1, 20), enclaveId: h(2) };
const body = { jobId: h(3), enc: h(4), ciphertext: 'AAAA', inputs: [h(5), h(6)] };

describe('node API request digests', () => {
  it('a submission signature recovers to the requester only for the same route, scope and body', () => {
    const k = generateSigningKey();
    const sig = signDigest(k.privateKey, nodeSubmissionDigest('POST /v1/jobs', scope, body));
    expect(recoverAddress(nodeSubmissionDigest('POST /v1/jobs', scope, body), sig)).toBe(k.address);
    const others = [
      nodeSubmissionDigest('POST /v1/sessions', scope, body),
      nodeSubmissionDigest('POST /v1/jobs', { ...scope, enclaveId: h(9) }, body),
      nodeSubmissionDigest('POST /v1/jobs', { ...scope, chainId: 1 }, body),
      nodeSubmissionDigest('POST /v1/jobs', { ...scope, jobMarket: h(9, 20) }, body),
      nodeSubmissionDigest('POST /v1/jobs', scope, { ...body, ciphertext: 'AAAB' }),
      nodeSubmissionDigest('POST /v1/jobs', scope, { ...body, enc: h(9) }),
      nodeSubmissionDigest('POST /v1/jobs', scope, { ...body, inputs: [h(6), h(5)] }),
      nodeSubmissionDigest('POST /v1/jobs', scope, { ...body, inputs: [h(5)] }),
      // A declared output bound is signed: a host cannot add, raise or lower it (decision 1690).
      nodeSubmissionDigest('POST /v1/jobs', scope, { ...body, maxOutputBytes: 4096 }),
      nodeSubmissionDigest('POST /v1/jobs', scope, { ...body, maxOutputBytes: 8192 }),
    ];
    for (const d of others) expect(recoverAddress(d, sig)).not.toBe(k.address);
    expect(new Set(others.map((d) => bytesToHex(d))).size).toBe(others.length);
  });

  it('a submission without an output bound keeps the digest it had before bounds existed', () => {
    // The digest the encoding of decision 0871 gave this body (computed with it before bounds were
    // added): a submission signed by an older SDK still recovers to its requester.
    const before = '0x83069d760647e8dcc66da224e42667b39e4a8bee0fdfa68fb211cd581cf73cca';
    expect(bytesToHex(nodeSubmissionDigest('POST /v1/jobs', scope, body))).toBe(before);
  });

  it('an upload intent binds uploader, artifact, size, expiry and node', () => {
    const k = generateSigningKey();
    const intent = { uploader: k.address, artifactId: h(7), size: 1000, expiresAt: 1_700_000_000 };
    const sig = signDigest(k.privateKey, uploadIntentDigest(scope, intent));
    expect(recoverAddress(uploadIntentDigest(scope, intent), sig)).toBe(k.address);
    for (const other of [
      { ...intent, size: 1001 },
      { ...intent, artifactId: h(8) },
      { ...intent, expiresAt: intent.expiresAt + 1 },
      { ...intent, uploader: h(9, 20) },
    ])
      expect(recoverAddress(uploadIntentDigest(scope, other), sig)).not.toBe(k.address);
    expect(recoverAddress(uploadIntentDigest({ ...scope, enclaveId: h(9) }, intent), sig)).not.toBe(
      k.address,
    );
    expect(() => uploadIntentDigest(scope, { ...intent, size: -1 })).toThrow(RangeError);
  });

  it('the close message is the domain tag, distinct from any tensor payload format byte', () => {
    const pt = sessionClosePlaintext();
    expect(new TextDecoder().decode(pt)).toBe('firn/session-close/v1');
    expect(pt[0]).not.toBe(1);
    expect(pt[0]).not.toBe(2);
  });
});
