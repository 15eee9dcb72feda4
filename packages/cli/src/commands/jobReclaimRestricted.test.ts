import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AnvilInstance,
  claimJob,
  createFirnClients,
  deployFirn,
  type FirnClients,
  type FirnDeployment,
  getJob,
  getWithdrawable,
  JobStatus,
  requestExit,
  revokeMeasurement,
  startAnvil,
} from '@firn/chain';
import { keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postOpenJob, registerApprovedNode } from '../../test/jobChain.ts';
import { jobReclaim } from './job.ts';

// Decision 1775: the market ends a running claim at once, the whole bond back to the claimant, when
// the guardian revoked the node's measurement after the claim, whether the node is Active or
// Exiting (an Exiting node still proves its claims). `firn job reclaim` judges that client-side
// first; reading `ineligibility` ("not Active" before the measurement) it refused what the
// contract takes.
const ETH = 10n ** 18n;
const ENCLAVE_ID = keccak256(toHex('job-restricted-enclave'));
const MEASUREMENT = keccak256(toHex('job-restricted-bundle'));
const dir = mkdtempSync(join(tmpdir(), 'firn-job-restricted-'));
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const at = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 50 });

beforeAll(async () => {
  anvil = await startAnvil({ accounts: 6 });
  // As deployJobFirn, with account 4 the guardian (it revokes at once).
  deployment = await deployFirn({
    rpcUrl: anvil.rpcUrl,
    deployerKey: anvil.accounts[0]!.privateKey,
    governanceDelay: 1,
    minNodeStake: ETH,
    minVerifierStake: ETH,
    unbondingPeriod: 60,
    challengeWindow: 30,
    slashAmount: ETH,
    claimBond: ETH / 10n,
    epochLength: 3600,
    measurements: [{ teeType: 1, measurement: MEASUREMENT }],
    verifiers: [anvil.accounts[3]!.address],
    guardian: anvil.accounts[4]!.address,
    pollingIntervalMs: 50,
  });
  await registerApprovedNode(anvil, at, {
    enclaveId: ENCLAVE_ID,
    measurement: MEASUREMENT,
    endpoint: 'http://127.0.0.1:9',
    tag: 'job-restricted',
  });
  // A test key: anvil's well-known public development account 2, funded only on the local test chain.
  writeFileSync(join(dir, 'requester.key'), anvil.accounts[2]!.privateKey, { mode: 0o600 });
}, 60_000);
afterAll(async () => {
  await anvil?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('firn job reclaim of a claim whose Exiting node was revoked (decision 1775)', () => {
  it('reclaims at once: the escrow to the requester, the whole bond to the node', async () => {
    const jobId = await postOpenJob(at(2), 600n);
    await claimJob(at(1), { jobId, enclaveId: ENCLAVE_ID });
    await requestExit(at(1), ENCLAVE_ID);
    await revokeMeasurement(at(4), { teeType: 1, measurement: MEASUREMENT });
    const operator = anvil.accounts[1]!.address;
    const bondBefore = await getWithdrawable(at(1), 'jobMarket', operator);

    const chain = { rpcUrl: anvil.rpcUrl, deployment };
    const r = await jobReclaim(chain, jobId, join(dir, 'requester.key'));
    expect(r.status).toBe('Reclaimed');
    expect(r.refundedWei).toBe(ETH.toString());
    expect((await getJob(at(2), jobId)).status).toBe(JobStatus.Reclaimed);
    expect(await getWithdrawable(at(1), 'jobMarket', operator)).toBe(bondBefore + ETH / 10n);
  }, 60_000);
});
