import { DEV_POLICY } from '@firn/attestation';
import {
  claimNodeReward,
  createFirnClients,
  finalizeJob,
  firnJobMarketAbi,
  firnRewardsAbi,
  getJob,
  getNode,
  getNodeEpochReward,
  getRewardsState,
  JobStatus,
  rewardsAddress,
} from '@firn/chain';
import { FirnError, type Hex } from '@firn/core';
import { formatEther, parseEventLogs } from 'viem';
import { encodeOnnxModel } from '@firn/ml/formats';
import { deploymentFromState, devnetRoots, type DevnetStateFile, runJob } from '@firn/client';

export interface InferenceDemoResult {
  jobId: Hex;
  node: string;
  output: unknown;
  proofOk: boolean;
  reasons: string[];
  /** Escrow minus the protocol fee. */
  payoutWei: bigint;
  /** The payout finalize credited to the operator (JobFinalized.payout; the claim bond comes back beside it). */
  operatorCreditWei: bigint;
}

/** A small fixed ONNX model for the demo: 4 features -> 8 (ReLU) -> 3 logits -> softmax. */
export function demoModel(): Uint8Array {
  const w = (n: number, s: number) =>
    Float32Array.from({ length: n }, (_v, i) => Math.sin(i * 0.7 + s) * 0.5);
  return encodeOnnxModel({
    name: 'firn_demo_mlp',
    nodes: [
      { opType: 'MatMul', inputs: ['features', 'W0'], outputs: ['m0'] },
      { opType: 'Add', inputs: ['m0', 'b0'], outputs: ['z0'] },
      { opType: 'Relu', inputs: ['z0'], outputs: ['h0'] },
      { opType: 'MatMul', inputs: ['h0', 'W1'], outputs: ['m1'] },
      { opType: 'Add', inputs: ['m1', 'b1'], outputs: ['logits'] },
      {
        opType: 'Softmax',
        inputs: ['logits'],
        outputs: ['probabilities'],
        attributes: [{ name: 'axis', kind: 'int', value: -1 }],
      },
    ],
    initializers: [
      { name: 'W0', dims: [4, 8], dtype: 'float', data: w(32, 1) },
      { name: 'b0', dims: [8], dtype: 'float', data: w(8, 2) },
      { name: 'W1', dims: [8, 3], dtype: 'float', data: w(24, 3) },
      { name: 'b1', dims: [3], dtype: 'float', data: w(3, 4) },
    ],
    inputs: [{ name: 'features', elemType: 'float', shape: ['N', 4] }],
    outputs: [{ name: 'probabilities', elemType: 'float', shape: ['N', 3] }],
  });
}

async function rpc(url: string, method: string, params: unknown[]): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  if (!res.ok) throw new Error(`${method} failed: ${res.status}`);
}

/**
 * Devnet demo: one confidential inference job through the market, its decrypted result, the
 * off-chain proof check, then (anvil only) time travel past the challenge window, finalize, and
 * what the operator was credited.
 */
export async function runInferenceDemo(
  state: DevnetStateFile,
  log: (line: string) => void,
): Promise<InferenceDemoResult> {
  const deployment = deploymentFromState(state);
  const escrow = 10n ** 16n;
  const input = {
    features: { dims: [2, 4], type: 'float32', data: [0.1, 0.2, 0.3, 0.4, -1, 0.5, 2, -0.25] },
  };
  log('inference: sealing a model and 2 input rows to an attested enclave');
  const r = await runJob({
    rpcUrl: state.rpcUrl,
    deployment,
    requesterKey: state.accounts.requester.privateKey,
    policy: DEV_POLICY,
    ...devnetRoots(state),
    kind: 'inference',
    inputs: [
      { role: 'model', bytes: demoModel(), contentType: 'application/onnx' },
      {
        role: 'input',
        bytes: new TextEncoder().encode(JSON.stringify(input)),
        contentType: 'application/json',
      },
    ],
    params: {},
    escrow,
    onPosted: (id) => log(`inference: job ${id} posted with escrow ${escrow} wei`),
    onProgress: (e) => log(`inference: progress ${JSON.stringify(e)}`),
  });
  const output = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes)) as unknown;
  log(`inference: node ${r.node.endpoint} (enclave ${r.node.enclaveId})`);
  log(`inference: decrypted result ${JSON.stringify(output)}`);
  log(
    `inference: proof ${r.proofCheck.ok ? 'verified off chain' : `INVALID: ${r.proofCheck.reasons.join('; ')}`}`,
  );
  const clients = createFirnClients(state.rpcUrl, state.accounts.requester.privateKey, deployment, {
    pollingIntervalMs: 100,
  });
  const operator = (await getNode(clients, r.node.enclaveId)).operator;
  const window = await clients.public.readContract({
    address: deployment.jobMarket,
    abi: firnJobMarketAbi,
    functionName: 'challengeWindow',
  });
  await rpc(state.rpcUrl, 'evm_increaseTime', [Number(window) + 1]);
  await rpc(state.rpcUrl, 'evm_mine', []);
  const fin = await finalizeJob(clients, r.jobId);
  // Pull payments: finalize credits the operator the escrow minus the protocol fee (and returns
  // the claim bond); the node's host withdraws it. The event says what was credited.
  const [ev] = parseEventLogs({ abi: firnJobMarketAbi, eventName: 'JobFinalized', logs: fin.receipt.logs });
  const paid = (await getJob(clients, r.jobId)).status === JobStatus.Paid;
  const payout = ev?.args.payout ?? 0n;
  log(
    `inference: challenge window passed; job ${paid ? 'Paid' : 'NOT paid'}; operator ${operator} credited ${payout} wei (protocol fee ${ev?.args.fee ?? 0n} wei to the reward pool)`,
  );
  return {
    jobId: r.jobId,
    node: r.node.endpoint,
    output,
    proofOk: r.proofCheck.ok,
    reasons: r.proofCheck.reasons,
    payoutWei: escrow - (ev?.args.fee ?? 0n),
    operatorCreditWei: payout,
  };
}

export interface RewardsDemoResult {
  epoch: bigint;
  enclaveId: Hex;
  operator: Hex;
  amountWei: bigint;
  answers: number;
  claimTx: Hex;
}

/**
 * Devnet demo: wait until a reward epoch in which a node answered a verifier's liveness challenge
 * (signed by its enclave) has ended, and show that node's reward: the claim its host made, or the
 * demo's own claim (anyone may claim; it is credited to the operator). Mines empty blocks on
 * anvil so chain time follows wall time. Throws E_TIMEOUT after `timeoutMs` (default 90 s).
 */
export async function runRewardsDemo(
  state: DevnetStateFile,
  log: (line: string) => void,
  timeoutMs = 90_000,
): Promise<RewardsDemoResult> {
  const deployment = deploymentFromState(state);
  const clients = createFirnClients(state.rpcUrl, state.accounts.requester.privateKey, deployment, {
    pollingIntervalMs: 100,
  });
  const rewards = rewardsAddress(clients);
  const st = await getRewardsState(clients);
  log(
    `rewards: pool received ${st.totalReceived} wei so far; epochs of ${st.epochLength} s; waiting for an epoch with liveness answers to end`,
  );
  const until = Date.now() + timeoutMs;
  for (;;) {
    const claimed = await clients.public.getContractEvents({
      address: rewards,
      abi: firnRewardsAbi,
      eventName: 'NodeRewardClaimed',
      fromBlock: deployment.deployBlock,
      strict: true,
    });
    let hit = claimed[0];
    if (!hit) {
      const { currentEpoch } = await getRewardsState(clients);
      for (const n of state.nodes) {
        for (let e = currentEpoch > 8n ? currentEpoch - 8n : 0n; e < currentEpoch && !hit; e++) {
          const r = await getNodeEpochReward(clients, { epoch: e, enclaveId: n.enclaveId });
          if (r.pending === 0n) continue;
          const res = await claimNodeReward(clients, { epoch: e, enclaveId: n.enclaveId }).catch(
            () => undefined,
          );
          if (!res) continue;
          [hit] = parseEventLogs({
            abi: firnRewardsAbi,
            eventName: 'NodeRewardClaimed',
            logs: res.receipt.logs,
          });
        }
        if (hit) break;
      }
    }
    if (hit) {
      const { epoch, enclaveId, operator, amount } = hit.args;
      const { answers } = await getNodeEpochReward(clients, { epoch, enclaveId });
      log(
        `rewards: epoch ${epoch} reward of ${amount} wei (${formatEther(amount)} ETH) paid to node ${enclaveId} (operator ${operator}) for ${answers} enclave-signed liveness answer(s)`,
      );
      return { epoch, enclaveId, operator, amountWei: amount, answers, claimTx: hit.transactionHash };
    }
    if (Date.now() > until) throw new FirnError('E_TIMEOUT', 'no epoch reward was paid to a node in time');
    await rpc(state.rpcUrl, 'evm_mine', []);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
