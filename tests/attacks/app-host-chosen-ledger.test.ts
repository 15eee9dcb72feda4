import type { Workload } from '@firn/app';
import { type Hex, sha256 } from '@firn/core';
import { describe, expect, it } from 'vitest';
import {
  APP_TEST_DOMAIN as domain,
  createAppProgram,
  oneOutput,
} from '../../packages/enclave/test/appProgram.ts';
import type { RunJobResult } from '../../packages/enclave/src/jobs/runJob.ts';

// A malicious host chooses the data ledger the enclave signs an app's records for (runJob's
// `domain.dataLedger` comes from the host; the request binds chainId and jobMarket but not the
// ledger). With a ledger of its own choosing the records are valid signatures for a contract
// nobody reads: they can never be posted to the deployment's FirnDataLedger (WrongSigner), so the
// records are withheld for good, while the Work Proof (which does not cover them) is accepted and
// the host is paid. The requester must be able to name the ledger, as it names the job market.
const workloads: Record<string, Workload> = {
  async certify(ctx) {
    await ctx.signData(sha256(ctx.input('data')), { topic: 'digest' });
    return oneOutput(new Uint8Array(1));
  },
};
const program = await createAppProgram({ workloads, now: 1_750_000_000, prefix: 'firn-ledger-' });
const run = (kind: string, hostLedger: Hex, requestLedger: Hex | null = domain.dataLedger) =>
  program.run(kind, { hostLedger, requestLedger });

describe('the ledger an app signs for', () => {
  it('records are signed for the ledger the requester named', async () => {
    const r = await run('certify', domain.dataLedger);
    expect(r.signedData[0]!.ledger.address).toBe(domain.dataLedger);
  });
  it('a request that names no ledger gets no record, whatever ledger the host names', async () => {
    const r = await run('certify', '0x00000000000000000000000000000000000000ee', null).catch(
      (e: unknown) => e,
    );
    expect((r as RunJobResult).signedData?.[0]?.ledger.address).toBeUndefined();
    expect(r).toMatchObject({ code: 'E_UNSUPPORTED' });
  });
  it('a host that names another ledger gets the job refused (E_JOB_INVALID)', async () => {
    await expect(run('certify', '0x00000000000000000000000000000000000000ee')).rejects.toMatchObject({
      code: 'E_JOB_INVALID',
    });
  });
});
