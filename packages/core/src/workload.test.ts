import { hashWorkProof } from '@firn/chain';
import { describe, expect, it } from 'vitest';
import { bytesToHex } from './bytes.ts';
import {
  computeInputCommitment,
  computeOutputCommitment,
  computeWorkloadHash,
  jobChannelInfo,
  parseJobRequest,
} from './workload.ts';
import { parseWorkProofJson, workProofDigest, workProofToJson } from './workProof.ts';
import { canonicalize } from './evidence.ts';

const id = (n: number) => bytesToHex(new Uint8Array(32).fill(n));

describe('job commitments', () => {
  it('are stable under key order and change with every field', () => {
    const a = computeWorkloadHash('inference', { b: 1, a: [1, { y: 2, x: 1 }] }, [
      { role: 'model', artifactId: id(1) },
    ]);
    const b = computeWorkloadHash('inference', { a: [1, { x: 1, y: 2 }], b: 1 }, [
      { role: 'model', artifactId: id(1) },
    ]);
    expect(a).toBe(b);
    expect(
      computeWorkloadHash('training', { a: [1, { x: 1, y: 2 }], b: 1 }, [
        { role: 'model', artifactId: id(1) },
      ]),
    ).not.toBe(a);
    expect(
      computeWorkloadHash('inference', { b: 1, a: [1, { y: 2, x: 1 }] }, [
        { role: 'input', artifactId: id(1) },
      ]),
    ).not.toBe(a);
    expect(computeInputCommitment([id(1), id(2)])).not.toBe(computeInputCommitment([id(2), id(1)]));
    expect(computeOutputCommitment([{ role: 'output', artifactId: id(1) }])).not.toBe(
      computeInputCommitment([id(1)]),
    );
    expect(jobChannelInfo(id(1))).not.toEqual(jobChannelInfo(id(2)));
  });

  it('refuses odd roles, bigint and NaN params', () => {
    expect(() => computeWorkloadHash('Inference', {}, [])).toThrow();
    expect(() => computeWorkloadHash('inference', {}, [{ role: 'a|b', artifactId: id(1) }])).toThrow();
    expect(() => computeWorkloadHash('inference', { n: 1n }, [])).toThrow();
    expect(() => computeWorkloadHash('inference', { n: Number.NaN }, [])).toThrow();
  });

  it('refuses __proto__, constructor and prototype keys, so two params never merge into one hash', () => {
    // The attack: JSON.parse keeps "__proto__" as an own key; canonicalize's assignment would turn
    // it into a prototype and drop it, so {"__proto__": {...}, a: 1} would hash like {a: 1}.
    const smuggled = JSON.parse('{"a":1,"__proto__":{"epochs":1000}}') as Record<string, unknown>;
    expect(Object.keys(smuggled)).toContain('__proto__');
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };
    expect(code(() => computeWorkloadHash('training', smuggled, []))).toBe('E_INVALID_INPUT');
    for (const k of ['constructor', 'prototype'])
      expect(code(() => computeWorkloadHash('training', JSON.parse(`{"x":{"${k}":1}}`), []))).toBe(
        'E_INVALID_INPUT',
      );
    // A literal {__proto__: ...} sets the prototype instead of a key: refused, not dropped.
    expect(code(() => computeWorkloadHash('training', { a: 1, __proto__: { b: 2 } } as never, []))).toBe(
      'E_INVALID_INPUT',
    );
    expect(code(() => computeWorkloadHash('training', { d: new Date(0) } as never, []))).toBe(
      'E_INVALID_INPUT',
    );
    // Nested inside arrays too; and the plain variant still hashes.
    expect(code(() => computeWorkloadHash('training', JSON.parse('{"h":[{"__proto__":{}}]}'), []))).toBe(
      'E_INVALID_INPUT',
    );
    expect(computeWorkloadHash('training', { a: 1 }, [])).toMatch(/^0x[0-9a-f]{64}$/);
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { d: deep };
    expect(code(() => computeWorkloadHash('training', deep, []))).toBe('E_INVALID_INPUT');
  });
});

describe('canonicalize', () => {
  it('keeps a "__proto__" key as an own key, so it cannot be added without changing the JSON', () => {
    const plain = JSON.parse('{"a":1}') as unknown;
    const smuggled = JSON.parse('{"a":1,"__proto__":{"b":2}}') as unknown;
    expect(JSON.stringify(canonicalize(smuggled))).toBe('{"__proto__":{"b":2},"a":1}');
    expect(JSON.stringify(canonicalize(smuggled))).not.toBe(JSON.stringify(canonicalize(plain)));
  });
});

describe('job request parsing', () => {
  const ok = {
    v: 1,
    jobId: id(1),
    kind: 'inference',
    inputs: [{ role: 'model', artifactId: id(2) }],
    grants: [],
    params: {},
    resultRecipient: id(3),
    chainId: 1,
    jobMarket: `0x${'11'.repeat(20)}`,
  };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  it('accepts a well-formed request and refuses unknown fields, duplicate roles and oversize', () => {
    expect(parseJobRequest(enc(ok)).jobId).toBe(id(1));
    expect(() => parseJobRequest(enc({ ...ok, extra: 1 }))).toThrow(/unknown/);
    expect(() => parseJobRequest(enc({ ...ok, inputs: [ok.inputs[0], ok.inputs[0]] }))).toThrow(/distinct/);
    expect(() => parseJobRequest(new Uint8Array(2 * 1024 * 1024))).toThrow(/too large/);
    expect(() =>
      parseJobRequest(
        new TextEncoder().encode(JSON.stringify(ok).replace('"params":{}', '"params":{"__proto__":{"a":1}}')),
      ),
    ).toThrow(/__proto__/);
  });
});

describe('Work Proof typed data', () => {
  const proof = {
    jobId: id(1),
    enclaveId: id(2),
    measurement: id(3),
    workloadHash: id(4),
    inputCommitment: id(5),
    outputCommitment: id(6),
    startedAt: 10n,
    finishedAt: 12n,
    workUnits: 7n,
  };
  const domain = { chainId: 31337, jobMarket: `0x${'22'.repeat(20)}` as const };
  it('hashes exactly as the chain package (and so the contract) does', () => {
    expect(workProofDigest(domain, proof)).toBe(
      hashWorkProof({ chainId: 31337, verifyingContract: domain.jobMarket }, proof),
    );
  });
  it('round-trips PROOF.json and refuses malformed fields', () => {
    const j = workProofToJson(proof, `0x${'ab'.repeat(65)}`, domain, `0x${'33'.repeat(20)}`);
    expect(parseWorkProofJson(JSON.stringify(j)).proof).toEqual(proof);
    expect(() => parseWorkProofJson({ ...j, proof: { ...j.proof, workUnits: '-1' } })).toThrow();
    expect(() =>
      parseWorkProofJson({ ...j, proof: { ...j.proof, workUnits: (1n << 64n).toString() } }),
    ).toThrow();
    expect(() => parseWorkProofJson({ ...j, signature: '0x00' })).toThrow();
  });
});

// docs/decisions/1854-salted-workload-hash.md
describe('params salt', () => {
  it('adds a fresh 32-byte salt once, changes the hash, and leaves it out of what the workload sees', async () => {
    const { SALT_PARAM, withParamsSalt, workloadParams, computeWorkloadHash } = await import('./workload.ts');
    const params = { target: 'defaulted', epochs: 1 };
    const a = withParamsSalt(params);
    const b = withParamsSalt(params);
    expect(a[SALT_PARAM]).toMatch(/^0x[0-9a-f]{64}$/);
    expect(a[SALT_PARAM]).not.toBe(b[SALT_PARAM]);
    expect(withParamsSalt(a)).toBe(a);
    expect(params).toEqual({ target: 'defaulted', epochs: 1 });
    const inputs = [{ role: 'dataset', artifactId: `0x${'11'.repeat(32)}` as const }];
    expect(computeWorkloadHash('training', a, inputs)).not.toBe(
      computeWorkloadHash('training', params, inputs),
    );
    expect(workloadParams(a)).toEqual(params);
    expect(workloadParams(params)).toBe(params);
  });
});
