import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { type AnvilInstance, startAnvil } from './anvil.ts';
import type { ChainRevertedError } from './ChainRevertedError.ts';
import { createFirnClients, type FirnClients } from './clients.ts';
import { postData } from './dataLedger/postData.ts';
import { claimJob, releaseJob } from './jobMarket/claimJob.ts';
import { finalizeJob } from './jobMarket/finalizeJob.ts';
import { getJob, getWorkProofDigest } from './jobMarket/getJob.ts';
import { postJob } from './jobMarket/postJob.ts';
import { submitProof } from './jobMarket/submitProof.ts';
import { approveNode } from './registry/approveNode.ts';
import { registerNode } from './registry/registerNode.ts';
import { getRewardsState } from './rewards/getRewardsState.ts';
import { type FirnDeployment, JobStatus } from './types.ts';
import { joinVerifierSet } from './verifierSet/joinVerifierSet.ts';
import { getWithdrawable, withdrawCredits } from './withdrawCredits.ts';
import { deployTestFirn } from '../test/testDeployment.ts';
import { hashWorkProof, signedDataTypedData, type WorkProof, workProofTypedData } from './workProof.ts';

// One job-market round trip on a real anvil with a Work Proof signed by a viem account standing in
// for the enclave key, plus the TypeScript and Solidity EIP-712 digests compared. Disputes,
// slashing and the refusal paths are covered by the forge tests, not here.
const ETH = 10n ** 18n;
let anvil: AnvilInstance;
let deployment: FirnDeployment;
const at = (i: number): FirnClients =>
  createFirnClients(anvil.rpcUrl, anvil.accounts[i]!.privateKey, deployment, { pollingIntervalMs: 50 });

describe('work proofs and the job market on anvil', () => {
  beforeAll(async () => {
    anvil = await startAnvil({ accounts: 6 });
    deployment = await deployTestFirn(anvil, {
      measurements: [{ teeType: 1, measurement: keccak256(toHex('bundle')) }],
      verifiers: [anvil.accounts[3]!.address],
    });
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  it('hashWorkProof agrees with the contract for arbitrary values', async () => {
    const proof: WorkProof = {
      jobId: keccak256(toHex('j')),
      enclaveId: keccak256(toHex('e')),
      measurement: keccak256(toHex('m')),
      workloadHash: keccak256(toHex('w')),
      inputCommitment: keccak256(toHex('i')),
      outputCommitment: keccak256(toHex('o')),
      startedAt: 1_700_000_000n,
      finishedAt: 2n ** 64n - 1n,
      workUnits: 12345n,
    };
    const domain = { chainId: deployment.chainId, verifyingContract: deployment.jobMarket };
    expect(hashWorkProof(domain, proof)).toBe(await getWorkProofDigest(at(0), proof));
    // A different domain (another chain) gives another digest.
    expect(hashWorkProof({ ...domain, chainId: 1 }, proof)).not.toBe(hashWorkProof(domain, proof));
  });

  it('posts, claims, proves, finalizes and pays; posts signed data', async () => {
    const gov = at(0);
    const operator = at(1);
    const requester = at(2);
    const enclave = privateKeyToAccount(anvil.accounts[5]!.privateKey);
    const measurement = keccak256(toHex('bundle'));
    const enclaveId = keccak256(toHex('enclave-rt'));
    const evidenceDigest = keccak256(toHex('ev'));
    await joinVerifierSet(at(3), ETH);
    await registerNode(operator, {
      enclaveId,
      teeType: 1,
      measurement,
      platformIdHash: keccak256(toHex('machine-1')),
      enclaveAddress: enclave.address,
      kemPublicKey: keccak256(toHex('kem')),
      endpoint: 'http://127.0.0.1:9100',
      evidenceDigest,
      stake: ETH,
    });
    await approveNode(at(3), { enclaveId, round: 1, evidenceDigest });

    const block = await gov.public.getBlock();
    const workloadHash = keccak256(toHex('model'));
    const inputCommitment = keccak256(toHex('inputs'));
    const { jobId } = await postJob(requester, {
      teeTypeMask: 1 << 1,
      allowedMeasurements: [],
      workloadHash,
      inputCommitment,
      deadline: block.timestamp + 3600n,
      claimTimeout: 600n,
      escrow: 2n * ETH,
    });
    expect((await getJob(gov, jobId)).status).toBe(JobStatus.Open);
    // A job bound to another (attested) Enclave ID: this node may not claim it.
    const bound = await postJob(requester, {
      teeTypeMask: 1 << 1,
      allowedMeasurements: [],
      enclaveIds: [keccak256(toHex('the-attested-one'))],
      workloadHash,
      inputCommitment,
      deadline: block.timestamp + 3600n,
      claimTimeout: 600n,
      escrow: ETH,
    });
    expect((await getJob(gov, bound.jobId)).enclaveIds).toEqual([keccak256(toHex('the-attested-one'))]);
    const notBound = await claimJob(operator, { jobId: bound.jobId, enclaveId }).catch((e: unknown) => e);
    expect((notBound as ChainRevertedError).errorName).toBe('NodeNotEligible');
    expect((notBound as ChainRevertedError).args).toEqual([bound.jobId, enclaveId, 6]);
    // A node that released its claim cannot take the job back (decision 1768): the revert names
    // the reason in words.
    const released = await postJob(requester, {
      teeTypeMask: 1 << 1,
      allowedMeasurements: [],
      workloadHash,
      inputCommitment,
      deadline: block.timestamp + 3600n,
      claimTimeout: 600n,
      escrow: ETH,
    });
    await claimJob(operator, { jobId: released.jobId, enclaveId });
    await releaseJob(operator, released.jobId);
    expect((await getJob(gov, released.jobId)).status).toBe(JobStatus.Open);
    const again = await claimJob(operator, { jobId: released.jobId, enclaveId }).catch((e: unknown) => e);
    expect((again as ChainRevertedError).errorName).toBe('NodeNotEligible');
    expect((again as ChainRevertedError).args).toEqual([released.jobId, enclaveId, 7]);
    expect((again as ChainRevertedError).message).toMatch(
      /already held a claim on the job that lapsed or was released/,
    );
    // The claim bond must be posted exactly.
    const noBond = await claimJob(operator, { jobId, enclaveId, bond: 0n }).catch((e: unknown) => e);
    expect((noBond as ChainRevertedError).errorName).toBe('WrongClaimBond');
    await claimJob(operator, { jobId, enclaveId });

    const proof: WorkProof = {
      jobId,
      enclaveId,
      measurement,
      workloadHash,
      inputCommitment,
      outputCommitment: keccak256(toHex('outputs')),
      startedAt: block.timestamp,
      finishedAt: block.timestamp + 5n,
      workUnits: 42n,
    };
    const domain = { chainId: deployment.chainId, verifyingContract: deployment.jobMarket };
    // Signed by another key: refused with the recovered address named.
    const wrongKey = privateKeyToAccount(anvil.accounts[4]!.privateKey);
    const bad = await submitProof(operator, {
      jobId,
      proof,
      signature: await wrongKey.signTypedData(workProofTypedData(domain, proof)),
    }).catch((e: unknown) => e);
    expect((bad as ChainRevertedError).errorName).toBe('WrongSigner');
    expect((bad as ChainRevertedError).args).toEqual([enclaveId, enclave.address, wrongKey.address]);

    const signature: Hex = await enclave.signTypedData(workProofTypedData(domain, proof));
    await submitProof(operator, { jobId, proof, signature });
    const proved = await getJob(gov, jobId);
    expect(proved.status).toBe(JobStatus.Proved);
    expect(proved.outputCommitment).toBe(proof.outputCommitment);

    const early = await finalizeJob(requester, jobId).catch((e: unknown) => e);
    expect((early as ChainRevertedError).errorName).toBe('ChallengeWindowOpen');

    await gov.public.request({ method: 'evm_increaseTime', params: [31] } as never);
    await gov.public.request({ method: 'evm_mine', params: [] } as never);
    const operatorAddr = anvil.accounts[1]!.address;
    await finalizeJob(requester, jobId); // anyone may finalize; the requester pays the gas here
    expect((await getJob(gov, jobId)).status).toBe(JobStatus.Paid);
    // Pull payment: escrow minus the 5 % protocol fee, plus the claim bond, credited to the operator.
    const fee = (2n * ETH * 500n) / 10_000n;
    expect(await getWithdrawable(gov, 'jobMarket', operatorAddr)).toBe(2n * ETH - fee + ETH / 10n);
    const before = await gov.public.getBalance({ address: operatorAddr });
    const w = await withdrawCredits(operator, 'jobMarket');
    const gas = w.receipt.gasUsed * w.receipt.effectiveGasPrice;
    const afterBal = await gov.public.getBalance({ address: operatorAddr });
    expect(afterBal - before + gas).toBe(2n * ETH - fee + ETH / 10n);
    expect(await getWithdrawable(gov, 'jobMarket', operatorAddr)).toBe(0n);
    // The fee went to the reward pool.
    expect((await getRewardsState(gov)).totalReceived).toBe(fee);

    const ledgerDomain = { chainId: deployment.chainId, verifyingContract: deployment.dataLedger };
    const data = { enclaveId, dataHash: keccak256(toHex('result')), uri: 'firn://artifact/abc' };
    const sig = await enclave.signTypedData(signedDataTypedData(ledgerDomain, data));
    const posted = await postData(requester, { ...data, signature: sig });
    expect(posted.digest).toMatch(/^0x[0-9a-f]{64}$/);
    const replay = await postData(requester, { ...data, signature: sig }).catch((e: unknown) => e);
    expect((replay as ChainRevertedError).errorName).toBe('AlreadyPosted');
  });
});
