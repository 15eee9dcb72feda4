import {
  computeProofFactsHash,
  computeTermsHash,
  firnJobMarketAbi,
  type FirnClients,
  JobStatus,
} from '@firn/chain';
import { checkSubmittedProof, ProofChecker } from '@firn/verifier';
import { encodeAbiParameters, encodeEventTopics, encodeFunctionData, type Hex } from 'viem';
import { describe, expect, it } from 'vitest';

// A greedy operator whose operator address is a contract: the contract exposes a function with
// the same selector as FirnJobMarket.submitProof, ignores its arguments and forwards a valid
// stored proof to the market. The market records the real (valid) signer; the transaction's own
// calldata carries a garbage signature. A verifier that judges fact reasons from the calldata
// disputes with reason 1, which the contract judges against the recorded signer: provably wrong,
// so every honest verifier that runs the daemon loses falseDisputeSlash on every such job.

const b32 = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex;
const market = '0x00000000000000000000000000000000000000aa' as Hex;
const registry = '0x00000000000000000000000000000000000000bb' as Hex;
const relay = '0x00000000000000000000000000000000000000cc' as Hex;
const enclaveKey = '0x1111111111111111111111111111111111111111' as Hex;
const jobId = b32(0x10b);
const enclaveId = b32(0xe1);

const job = {
  jobId,
  requester: '0x2222222222222222222222222222222222222222' as Hex,
  teeTypeMask: 2,
  status: JobStatus.Proved,
  deadline: 10_000n,
  claimTimeout: 1_000n,
  workloadHash: b32(1),
  inputCommitment: b32(2),
  enclaveId,
  claimant: relay,
  measurement: b32(3),
  outputCommitment: b32(4),
  // What the market recorded: the registered enclave key signed, times are consistent.
  signer: enclaveKey,
  workUnits: 1n,
  startedAt: 1_150n,
  finishedAt: 1_190n,
  provedBlock: 42n,
  snapshotId: 1n,
};
const challengeWindow = 3_700n;
const blockTime = 1_300n;

// The market's packed record (decision 1140): terms and proof facts only as hashes.
const record = {
  requester: job.requester,
  status: job.status,
  teeTypeMask: job.teeTypeMask,
  deadline: Number(job.deadline),
  claimExpiresAt: 2_100,
  escrow: 1n,
  maxWorkUnits: 0n,
  claimTimeout: Number(job.claimTimeout),
  challengeWindow: Number(challengeWindow),
  snapshotId: Number(job.snapshotId),
  termsHash: computeTermsHash({
    workloadHash: job.workloadHash,
    inputCommitment: job.inputCommitment,
    allowedMeasurements: [],
    enclaveIds: [],
  }),
  claimant: relay,
  bond: 0n,
  enclaveId,
  factsHash: computeProofFactsHash({
    signer: job.signer,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    provedBlock: job.provedBlock,
    challengeEndsAt: blockTime + challengeWindow,
    workUnits: job.workUnits,
    snapshotId: job.snapshotId,
  }),
  disputeStake: 0n,
};

/** An eth_getLogs entry for one market event, encoded with the market's ABI. */
function log(
  eventName: 'JobPosted' | 'JobClaimed' | 'ProofSubmitted',
  args: Record<string, unknown>,
  block: bigint,
) {
  const item = firnJobMarketAbi.find((x) => x.type === 'event' && x.name === eventName);
  if (item?.type !== 'event') throw new Error(eventName);
  const topics = encodeEventTopics({ abi: [item], eventName, args } as never);
  const data = encodeAbiParameters(
    item.inputs.filter((i) => !i.indexed),
    item.inputs.filter((i) => !i.indexed).map((i) => args[i.name as string]) as never,
  );
  return { topics, data, blockNumber: `0x${block.toString(16)}` };
}

const logs = [
  log(
    'JobPosted',
    {
      jobId,
      requester: job.requester,
      escrow: 1n,
      teeTypeMask: job.teeTypeMask,
      workloadHash: job.workloadHash,
      inputCommitment: job.inputCommitment,
      deadline: job.deadline,
      claimTimeout: job.claimTimeout,
      maxWorkUnits: 0n,
      allowedMeasurements: [],
      enclaveIds: [],
    },
    10n,
  ),
  log(
    'JobClaimed',
    {
      jobId,
      enclaveId,
      operator: relay,
      claimExpiresAt: 2_100n,
      bond: 0n,
      measurement: job.measurement,
      snapshotId: job.snapshotId,
    },
    20n,
  ),
  log(
    'ProofSubmitted',
    {
      jobId,
      enclaveId,
      outputCommitment: job.outputCommitment,
      workUnits: job.workUnits,
      signer: job.signer,
      startedAt: job.startedAt,
      finishedAt: job.finishedAt,
    },
    job.provedBlock,
  ),
];

// The calldata of the relay call: same selector and argument types, a garbage signature.
const proof = {
  jobId,
  enclaveId,
  measurement: job.measurement,
  workloadHash: job.workloadHash,
  inputCommitment: job.inputCommitment,
  outputCommitment: job.outputCommitment,
  startedAt: job.startedAt,
  finishedAt: job.finishedAt,
  workUnits: job.workUnits,
};
const input = encodeFunctionData({
  abi: firnJobMarketAbi,
  functionName: 'submitProof',
  args: [proof, b32(0x11), b32(0x11)],
});

function fakeClients(disputes: unknown[]): FirnClients {
  const pub = {
    getTransaction: async () => ({ to: relay, input }),
    getBlock: async () => ({ timestamp: blockTime, number: 50n }),
    request: async ({ method }: { method: string }) => {
      if (method === 'eth_getLogs') return logs;
      // Log reads are paged from the chain head (getLogsPaged).
      if (method === 'eth_blockNumber') return '0x32';
      throw new Error(`unexpected request ${method}`);
    },
    getBlockNumber: async () => 50n,
    readContract: async ({ functionName, args }: { functionName: string; args?: unknown[] }) => {
      if (functionName === 'getJob') return { ...record };
      if (functionName === 'MAX_CLOCK_SKEW') return 300n;
      if (functionName === 'wasEnclaveAddress') {
        const [id, account, block] = args as [Hex, Hex, bigint];
        return id === enclaveId && account.toLowerCase() === enclaveKey && block === job.provedBlock;
      }
      throw new Error(`unexpected read ${functionName}`);
    },
    simulateContract: async (p: unknown) => {
      disputes.push(p);
      return { request: p };
    },
    waitForTransactionReceipt: async () => ({ status: 'success', logs: [] }),
  };
  const wallet = {
    account: { address: '0x3333333333333333333333333333333333333333' },
    writeContract: async (p: unknown) => {
      disputes.push(p);
      return b32(0xdead);
    },
  };
  return {
    public: pub,
    wallet,
    account: wallet.account,
    addresses: { chainId: 31337, jobMarket: market, registry },
  } as unknown as FirnClients;
}

describe('attack: a relayed submitProof tricks the verifier daemon into a false fact dispute', () => {
  it('judges fact reasons on the facts the market recorded, not on the calldata of the transaction', async () => {
    const v = await checkSubmittedProof(fakeClients([]), jobId, b32(0x7a));
    // The recorded signer was the enclave key at the proof block: a reason-1 dispute is provably
    // wrong and would cost this verifier falseDisputeSlash.
    expect(v.reasonCode).not.toBe(1);
    expect(v.reasonCode).not.toBe(2);
  });

  it('never sends a fact dispute the contract will judge wrong', async () => {
    const sent: unknown[] = [];
    const verdict = await new ProofChecker(fakeClients(sent), { checkResults: false }).handle(
      jobId,
      b32(0x7a),
    );
    expect(verdict.disputed).toBe(false);
    expect(sent).toEqual([]);
  });
});
