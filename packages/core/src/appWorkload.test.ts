import { describe, expect, it } from 'vitest';
import { bytesToHex, utf8 } from './bytes.ts';
import { sha256 } from './hash.ts';
import { signedDataHash, signedDataUri } from './signedData.ts';
import { computeAppWorkloadHash, computeWorkloadHash, parseJobRequest } from './workload.ts';

const A = bytesToHex(sha256(utf8('app a')));
const B = bytesToHex(sha256(utf8('app b')));
const inputs = [{ role: 'data', artifactId: bytesToHex(sha256(utf8('x'))) }];
const request = {
  v: 1,
  jobId: A,
  kind: 'reverse',
  inputs,
  grants: [],
  params: {},
  resultRecipient: A,
  chainId: 1,
  jobMarket: `0x${'11'.repeat(20)}`,
};

describe('app workload hash (docs/decisions/1080-app-model.md)', () => {
  it('commits to the app: another app, or no app, hashes differently', () => {
    const a = computeAppWorkloadHash(A, 'reverse', {}, inputs);
    expect(a).toBe(
      computeAppWorkloadHash(A.toUpperCase().replace('0X', '0x') as typeof A, 'reverse', {}, inputs),
    );
    expect(a).not.toBe(computeAppWorkloadHash(B, 'reverse', {}, inputs));
    expect(a).not.toBe(computeWorkloadHash('reverse', {}, inputs));
    expect(a).not.toBe(computeAppWorkloadHash(A, 'reversf', {}, inputs));
    expect(() => computeAppWorkloadHash('0x12', 'reverse', {}, inputs)).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
  it('a job request may name its app (32 bytes); a malformed one is refused', () => {
    const enc = (o: unknown) => utf8(JSON.stringify(o));
    expect(parseJobRequest(enc(request)).app).toBeUndefined();
    expect(parseJobRequest(enc({ ...request, app: A })).app).toBe(A);
    expect(() => parseJobRequest(enc({ ...request, app: '0x1234' }))).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
    expect(() => parseJobRequest(enc({ ...request, app: 7 }))).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});

describe('signed-data hashing', () => {
  it('binds the topic and refuses bad topics and digests', () => {
    const d = sha256(utf8('data'));
    expect(signedDataHash('a', d)).not.toBe(signedDataHash('b', d));
    expect(signedDataHash('a', d)).not.toBe(bytesToHex(d));
    expect(signedDataUri('overlap-size')).toBe('firn:data:overlap-size');
    for (const t of ['', 'A', '-x', 'a b', 'x'.repeat(65)])
      expect(() => signedDataHash(t, d)).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
    expect(() => signedDataHash('a', new Uint8Array(31))).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});
