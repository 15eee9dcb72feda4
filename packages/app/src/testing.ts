/**
 * `@firn/app/testing`: call an app's workloads without an enclave, for the app's own unit tests.
 * Inputs are given in plaintext, `signData` signs with a throwaway key (its records have the right
 * shape and verify against that key, but no registry knows it), and everything the workload
 * returns is checked the way the enclave framework checks it (output count, distinct roles,
 * workUnits range). No sealing, no channel, no Work Proof: use the devnet for those.
 */
import { bytesToHex, FirnError, type Hex } from '@firn/core';
import { generateSigningKey } from '@firn/crypto';
import {
  type AppInput,
  createWorkloadContext,
  type FirnApp,
  MAX_SIGNED_DATA_PER_JOB,
  type SignedDataRecord,
  type WorkloadResult,
  checkWorkloadResult,
} from './index.ts';
import { signDataRecord } from './signData.ts';

export interface TestRunOptions {
  /** Inputs by role: bytes, or bytes with a content type (default application/octet-stream). */
  inputs?: Record<string, Uint8Array | { bytes: Uint8Array; contentType: string }>;
  params?: Record<string, unknown>;
  /** Unix seconds the workload's `ctx.now()` starts at (default 1_700_000_000). */
  now?: number;
  /** Deterministic `ctx.random` for the test (default the CSPRNG). */
  random?: (n: number) => Uint8Array;
}

export interface TestRunResult extends WorkloadResult {
  /** Progress events in order. */
  events: Record<string, unknown>[];
  /** Records `ctx.signData` produced (signed by `signerAddress`). */
  records: SignedDataRecord[];
  signerAddress: Hex;
}

const TEST_LEDGER = { chainId: 31337, address: `0x${'00'.repeat(19)}01` as Hex };

/**
 * Run `workload` of `app` as the enclave would, minus the enclave. Raises E_UNSUPPORTED for a
 * workload the app does not define, and whatever the workload raises (E_INPUT_INVALID for a
 * missing role, …), and E_JOB_FAILED for a result the framework would refuse.
 */
export async function runWorkload(
  app: FirnApp,
  workload: string,
  opts: TestRunOptions = {},
): Promise<TestRunResult> {
  const w = Object.hasOwn(app.workloads, workload) ? app.workloads[workload] : undefined;
  if (w === undefined)
    throw new FirnError('E_UNSUPPORTED', `app ${app.name} has no workload "${workload.slice(0, 64)}"`);
  const key = generateSigningKey();
  const enclaveId = globalThis.crypto.getRandomValues(new Uint8Array(32));
  const jobId = bytesToHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const inputs: AppInput[] = Object.entries(opts.inputs ?? {}).map(([role, v]) => {
    const bytes = v instanceof Uint8Array ? v : v.bytes;
    const contentType = v instanceof Uint8Array ? 'application/octet-stream' : v.contentType;
    return { role, artifactId: `0x${'00'.repeat(32)}`, contentType, bytes };
  });
  const events: Record<string, unknown>[] = [];
  const records: SignedDataRecord[] = [];
  const start = opts.now ?? 1_700_000_000;
  const t0 = Date.now();
  const ctx = createWorkloadContext({
    params: structuredClone(opts.params ?? {}),
    inputs,
    progress: (e) => events.push(structuredClone(e)),
    now: () => start + Math.floor((Date.now() - t0) / 1000),
    ...(opts.random ? { random: opts.random } : {}),
    signData: async (digest, o) => {
      if (records.length >= MAX_SIGNED_DATA_PER_JOB)
        throw new FirnError('E_TOO_LARGE', `a job signs at most ${MAX_SIGNED_DATA_PER_JOB} records`);
      const r = signDataRecord(
        { signingKey: key.privateKey, enclaveId },
        TEST_LEDGER,
        digest,
        o?.topic,
        jobId,
      );
      records.push(r);
      return r;
    },
  });
  const r = await w(ctx);
  checkWorkloadResult(r);
  return { ...r, events, records, signerAddress: key.address };
}
