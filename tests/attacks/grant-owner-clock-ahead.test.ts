import { createFirnClients } from '@firn/chain';
import { completeAppJob, prepareAppJob } from '@firn/client';
import type { FirnError } from '@firn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { foreignModelAppJob } from '../helpers/foreignModelAppJob.ts';

// A data owner whose host clock runs 30 minutes ahead of the chain, asked to grant a model to a
// job whose plan lasts 10 minutes. The owner judged "the plan has passed" on the later of chain
// time and its own clock, so it refused (E_GRANT_EXPIRED) a job the chain and the enclave would
// still run: the requester's job could never start. The contract enforces the deadline and the
// enclave's clock follows the chain, so the owner judges on chain time alone (decision 1460).
const AHEAD = 1800;
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

describe('a data owner on a host clock ahead of the chain', () => {
  it('grants to a job whose plan has not passed on chain, and the job runs', async () => {
    const job = await foreignModelAppJob(net);
    const prepared = await prepareAppJob({ ...job.options, deadlineSeconds: 600 });
    const ownerNow = () => Math.floor(Date.now() / 1000) + AHEAD;
    expect(prepared.plan.expiresAt).toBeLessThan(ownerNow());
    const ask = (plan: typeof prepared.plan) => job.grant(plan, { now: ownerNow }).catch((e: FirnError) => e);
    // A plan that has passed on chain is still refused.
    const chainNow = Number(
      (await createFirnClients(net.anvil.rpcUrl, undefined, net.deployment).public.getBlock()).timestamp,
    );
    const passed = await ask({ ...prepared.plan, expiresAt: chainNow - 1 });
    expect((passed as FirnError).code).toBe('E_GRANT_EXPIRED');
    const grant = await ask(prepared.plan);
    if (grant instanceof Error) throw grant;
    expect(grant.expiresAt).toBe(prepared.plan.expiresAt);
    const r = await completeAppJob(prepared, [grant]);
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(r.outputs.length).toBeGreaterThan(0);
  }, 60_000);
});
