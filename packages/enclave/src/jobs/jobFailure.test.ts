import type { Workload } from '@firn/app';
import { bytesToHex, FirnError, hexToBytes } from '@firn/core';
import { recoverAddress } from '@firn/crypto';
import { hashTypedData } from 'viem';
import { describe, expect, it } from 'vitest';
import { APP_TEST_DOMAIN, createAppProgram, oneOutput } from '../../test/appProgram.ts';
import {
  attestableFailureReason,
  JOB_FAILURE_REASONS,
  JOB_FAILURE_TYPE,
  jobFailureCodeOf,
  jobFailureDigestBytes,
  parseSignedJobFailure,
} from './jobFailure.ts';

// Decision 1595: the enclave signs a JobFailure only for failures that are a function of the
// committed workload and inputs. Each host-causable failure below is run for real in an enclave
// program and must produce no signature; each deterministic one must produce one that recovers
// the enclave address over the contract's EIP-712 digest.
const NOW = 1_750_000_000;
const LIMITS = { maxWorkloadMs: 300, maxOutputBytes: 1024, maxTotalOutputBytes: 1536 };
const workloads: Record<string, Workload> = {
  // The requester's own committed work rejects itself, late (e.g. a model's last layer).
  async 'late-model-error'(ctx) {
    ctx.progress({ epoch: 99 });
    throw new FirnError('E_MODEL_INVALID', 'layer 99 has shape [3, 4], expected [4, 3]');
  },
  async 'data-error'() {
    throw new FirnError('E_DATA_INVALID', 'row 12 has 3 columns, expected 4');
  },
  // Not attestable: host-controlled time, resources, crashes, untyped throws.
  hang: () => new Promise(() => undefined),
  async 'app-timeout'() {
    throw new FirnError('E_TIMEOUT', 'the app decided time was up');
  },
  async untyped() {
    throw new RangeError('Array buffer allocation failed');
  },
  async 'too-large'() {
    throw new FirnError('E_TOO_LARGE', 'buffer over the limit');
  },
  async missing() {
    throw new FirnError('E_NOT_FOUND', 'no such input');
  },
  async giant() {
    return oneOutput(new Uint8Array(LIMITS.maxOutputBytes + 1));
  },
  // The host passes no data ledger: signData is refused, and the app turns that into a data error.
  async 'sign-then-data'(ctx) {
    try {
      await ctx.signData(new Uint8Array(32), { topic: 't' });
    } catch {
      throw new FirnError('E_DATA_INVALID', 'could not sign, so I call my data invalid');
    }
    return oneOutput(new Uint8Array(1));
  },
};

const events: { event: string; data: Record<string, unknown> }[] = [];
const app = await createAppProgram({
  workloads,
  now: NOW,
  limits: LIMITS,
  prefix: 'firn-jobfailure-',
  emit: (event, data) => events.push({ event, data: data as Record<string, unknown> }),
});
const signedFailures = () => events.filter((e) => e.event === 'jobFailure');

async function runAndCollect(kind: string, o: Parameters<typeof app.run>[1] = {}) {
  const before = signedFailures().length;
  const err = (await app.run(kind, o).catch((e: unknown) => e)) as FirnError;
  return { err, signed: signedFailures().slice(before) };
}

describe('JobFailure digest', () => {
  it("equals viem's EIP-712 hashTypedData on random failures (the contract's hashFailure, see AttackAttestedFailure.t.sol)", () => {
    const rand = (n: number) => bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(n)));
    const fields = JOB_FAILURE_TYPE.slice('JobFailure('.length, -1)
      .split(',')
      .map((f) => {
        const [type, name] = f.split(' ');
        return { name: name!, type: type! };
      });
    for (let i = 0; i < 50; i++) {
      const domain = { chainId: [1, 31337, 2 ** 53 - 1][i % 3]!, jobMarket: rand(20) };
      const f = {
        jobId: rand(32),
        enclaveId: rand(32),
        measurement: rand(32),
        workloadHash: rand(32),
        inputCommitment: rand(32),
        reasonCode: [1, 6, 0xffff][i % 3]!,
        failedAt: [0n, (1n << 64n) - 1n, BigInt(NOW)][i % 3]!,
      };
      const viem = hashTypedData({
        domain: { name: 'firn', version: '1', chainId: domain.chainId, verifyingContract: domain.jobMarket },
        types: { JobFailure: fields },
        primaryType: 'JobFailure',
        message: f,
      });
      expect(bytesToHex(jobFailureDigestBytes(domain, f))).toBe(viem);
    }
  });

  it('refuses reason 0, a reason over uint16 and failedAt over uint64', () => {
    const f = {
      jobId: bytesToHex(new Uint8Array(32)),
      enclaveId: bytesToHex(new Uint8Array(32)),
      measurement: bytesToHex(new Uint8Array(32)),
      workloadHash: bytesToHex(new Uint8Array(32)),
      inputCommitment: bytesToHex(new Uint8Array(32)),
      reasonCode: 1,
      failedAt: 1n,
    };
    const domain = { chainId: 1, jobMarket: bytesToHex(new Uint8Array(20)) };
    expect(() => jobFailureDigestBytes(domain, { ...f, reasonCode: 0 })).toThrow(/uint16/);
    expect(() => jobFailureDigestBytes(domain, { ...f, reasonCode: 0x10000 })).toThrow(/uint16/);
    expect(() => jobFailureDigestBytes(domain, { ...f, failedAt: 1n << 64n })).toThrow(/uint64/);
  });

  it('the reason table round-trips and leaves out every host-causable code', () => {
    for (const [code, n] of Object.entries(JOB_FAILURE_REASONS)) expect(jobFailureCodeOf(n!)).toBe(code);
    for (const code of [
      'E_TIMEOUT',
      'E_TOO_LARGE',
      'E_NOT_FOUND',
      'E_UNSUPPORTED',
      'E_JOB_FAILED',
      'E_RUNTIME_CRASHED',
      'E_INTERNAL',
      'E_UNAVAILABLE',
      'E_ARTIFACT_TAMPERED',
      'E_GRANT_EXPIRED',
    ])
      expect(Object.hasOwn(JOB_FAILURE_REASONS, code)).toBe(false);
    const run = { fromWorkload: true, timedOut: false, crashed: false, hostRefused: false };
    const typed = new FirnError('E_MODEL_INVALID', 'x');
    expect(attestableFailureReason(typed, run)).toBe(1);
    expect(attestableFailureReason(typed, { ...run, timedOut: true })).toBeUndefined();
    expect(attestableFailureReason(typed, { ...run, crashed: true })).toBeUndefined();
    expect(attestableFailureReason(typed, { ...run, hostRefused: true })).toBeUndefined();
    expect(attestableFailureReason(typed, { ...run, fromWorkload: false })).toBeUndefined();
    expect(attestableFailureReason(new Error('E_MODEL_INVALID'), run)).toBeUndefined();
  });

  it('parseSignedJobFailure is size-capped and typed', () => {
    expect(() => parseSignedJobFailure(null)).toThrow(/object/);
    expect(() => parseSignedJobFailure({ pad: 'x'.repeat(2000) })).toThrow(/bytes/);
    expect(() => parseSignedJobFailure({ reasonCode: 1 })).toThrow();
  });
});

describe('the enclave signs a JobFailure only for failures of the committed work', () => {
  it('a late model error of the workload is signed: fields bind this job, and it recovers the enclave address', async () => {
    const { err, signed } = await runAndCollect('late-model-error');
    expect(err.code).toBe('E_MODEL_INVALID');
    // The host still learns only the code; the message is not in the error or the signed failure.
    expect(err.message).not.toContain('layer 99');
    expect(signed).toHaveLength(1);
    expect(JSON.stringify(signed[0]!.data)).not.toContain('layer 99');
    const s = parseSignedJobFailure(signed[0]!.data);
    expect(s.failure.jobId).toBe(signed[0]!.data.jobId);
    expect(s.failure.enclaveId).toBe(app.identity.enclaveId.toLowerCase());
    expect(s.failure.measurement).toBe(app.appMeasurement.toLowerCase());
    expect(s.failure.reasonCode).toBe(JOB_FAILURE_REASONS.E_MODEL_INVALID);
    expect(s.failure.failedAt).toBe(BigInt(NOW));
    const domain = { chainId: APP_TEST_DOMAIN.chainId, jobMarket: APP_TEST_DOMAIN.jobMarket };
    const signer = recoverAddress(jobFailureDigestBytes(domain, s.failure), hexToBytes(s.signature));
    expect(signer.toLowerCase()).toBe(app.identity.enclaveAddress.toLowerCase());
    // Under another chain's domain the signature recovers someone else.
    const other = recoverAddress(
      jobFailureDigestBytes({ ...domain, chainId: domain.chainId + 1 }, s.failure),
      hexToBytes(s.signature),
    );
    expect(other.toLowerCase()).not.toBe(app.identity.enclaveAddress.toLowerCase());
  });

  it('an input the workload itself rejects (E_DATA_INVALID) is signed', async () => {
    const { err, signed } = await runAndCollect('data-error');
    expect(err.code).toBe('E_DATA_INVALID');
    expect(signed).toHaveLength(1);
    expect(parseSignedJobFailure(signed[0]!.data).failure.reasonCode).toBe(
      JOB_FAILURE_REASONS.E_DATA_INVALID,
    );
  });

  it("never signs a timeout: the enclave's cap or a deadline the host names (the host sets the clock)", async () => {
    for (const o of [{}, { extra: { deadline: NOW - 1 } }]) {
      const { err, signed } = await runAndCollect('hang', o);
      expect(err.code).toBe('E_TIMEOUT');
      expect(signed).toHaveLength(0);
    }
    const { err, signed } = await runAndCollect('app-timeout');
    expect(err.code).toBe('E_TIMEOUT');
    expect(signed).toHaveLength(0);
  });

  it('never signs a resource failure: an untyped allocation error, E_TOO_LARGE, an output over the limit, E_NOT_FOUND', async () => {
    for (const [kind, code] of [
      ['untyped', 'E_JOB_FAILED'],
      ['too-large', 'E_TOO_LARGE'],
      ['giant', 'E_TOO_LARGE'],
      ['missing', 'E_NOT_FOUND'],
    ] as const) {
      const { err, signed } = await runAndCollect(kind);
      expect(err.code, kind).toBe(code);
      expect(signed, kind).toHaveLength(0);
    }
  });

  it('never signs after the host refused the workload something (a signData without a ledger), whatever the app then throws', async () => {
    const { err, signed } = await runAndCollect('sign-then-data', { requestLedger: null });
    expect(err.code).toBe('E_DATA_INVALID');
    expect(signed).toHaveLength(0);
  });

  it('never signs when the host withholds an input (the run never starts): E_NOT_FOUND, no signature', async () => {
    // The same workload that is signed above, but the host passes no path for its input.
    const { err, signed } = await runAndCollect('late-model-error', { extra: { inputPaths: {} } });
    expect(err.code).toBe('E_NOT_FOUND');
    expect(signed).toHaveLength(0);
  });
});
