import { bytesToHex, type Hex, workProofDigest } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { workProofDigestBytes } from './workProofDigest.ts';

const rand = (n: number) => bytesToHex(crypto.getRandomValues(new Uint8Array(n)));
const u64 = () => new DataView(crypto.getRandomValues(new Uint8Array(8)).buffer).getBigUint64(0);
/** A Work Proof with random 32-byte fields and the given times and work units. */
const proofWith = (startedAt: bigint, finishedAt: bigint, workUnits: bigint) => ({
  jobId: rand(32),
  enclaveId: rand(32),
  measurement: rand(32),
  workloadHash: rand(32),
  inputCommitment: rand(32),
  outputCommitment: rand(32),
  startedAt,
  finishedAt,
  workUnits,
});

describe('workProofDigestBytes', () => {
  it("equals core's EIP-712 workProofDigest (viem) on random proofs, domains and uint64 edges", () => {
    const edges = [0n, 1n, (1n << 64n) - 1n, 1n << 63n];
    for (let i = 0; i < 200; i++) {
      const domain = {
        chainId: [1, 31337, 0, 2 ** 53 - 1, Math.floor(Math.random() * 1e9)][i % 5]!,
        jobMarket: rand(20),
      };
      const proof = proofWith(i < 4 ? edges[i]! : u64(), i < 4 ? edges[3 - i]! : u64(), u64());
      expect(bytesToHex(workProofDigestBytes(domain, proof))).toBe(workProofDigest(domain, proof));
    }
  });

  it('binds every field and the domain: changing any one changes the digest', () => {
    const domain = { chainId: 31337, jobMarket: rand(20) };
    const proof = proofWith(10n, 11n, 12n);
    const base = bytesToHex(workProofDigestBytes(domain, proof));
    for (const k of Object.keys(proof) as (keyof typeof proof)[]) {
      const v = proof[k];
      const changed = { ...proof, [k]: typeof v === 'bigint' ? v + 1n : rand(32) };
      expect(bytesToHex(workProofDigestBytes(domain, changed))).not.toBe(base);
    }
    expect(bytesToHex(workProofDigestBytes({ ...domain, chainId: 1 }, proof))).not.toBe(base);
    expect(bytesToHex(workProofDigestBytes({ ...domain, jobMarket: rand(20) }, proof))).not.toBe(base);
  });

  it('refuses out-of-range uint64 values, bad hex sizes and a bad chainId', () => {
    const domain = { chainId: 1, jobMarket: rand(20) };
    const proof = proofWith(1n, 2n, 3n);
    expect(() => workProofDigestBytes(domain, { ...proof, workUnits: 1n << 64n })).toThrow(/uint64/);
    expect(() => workProofDigestBytes(domain, { ...proof, startedAt: -1n })).toThrow(/uint64/);
    expect(() => workProofDigestBytes(domain, { ...proof, jobId: rand(31) as Hex })).toThrow();
    expect(() => workProofDigestBytes({ ...domain, jobMarket: rand(32) }, proof)).toThrow();
    expect(() => workProofDigestBytes({ ...domain, chainId: -1 }, proof)).toThrow(/chainId/);
  });
});
