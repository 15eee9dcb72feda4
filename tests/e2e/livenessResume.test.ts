/**
 * Liveness after an outage, on a real anvil with the real contracts, a node daemon whose enclave
 * is a separate process on the simulated TEE, and verifier challengers (decisions 1576, 1590-1592).
 * The node runs no liveness service for MAX_MISSED_EPOCHS challenged epochs (an outage): the pool
 * marks it unresponsive and verifiers stop challenging it. Then its liveness service comes back:
 * with a cap below the resume fee it logs one warning naming --max-resume-fee and pays nothing;
 * with the default cap it pays `resumeFee(enclaveId)` once by itself (to the owner's treasury, not
 * the pool: decision 1646), priced never below the dearest challenge of its outage (decision 1645),
 * is challenged again and answers, and does not pay again. The verifier daemon sends no challenge whose answer window would run past
 * the epoch's end (the pool would refuse it as ChallengeTooLate) and still challenges early in the
 * next one. The registration fee is 0 here: the resume still costs its challenges' gas.
 */
import {
  createFirnClients,
  type FirnClients,
  firnRewardsAbi,
  firnVerifierSetAbi,
  getChallenge,
  getRewardsState,
  rewardsAddress,
} from '@firn/chain';
import type { Hex } from '@firn/core';
import { LivenessService, type Logger } from '@firn/node';
import { LivenessChallenger } from '@firn/verifier';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewardsResume } from '../../packages/cli/src/commands/rewards.ts';
import { increaseTime, startTestNetwork, stateOf, type TestNetwork } from './network.ts';

const EPOCH = 30;
const ANSWER_WINDOW = 10;
let net: TestNetwork;
let v1: FirnClients;
let v2: FirnClients;
let enclaveId: Hex;

beforeAll(async () => {
  net = await startTestNetwork({
    epochLength: EPOCH,
    answerWindow: ANSWER_WINDOW,
    poolDeposit: parseEther('1'),
    // The daemons' own challengers never run: the challengers below are the test's own.
    challengeLiveness: false,
  });
  const at = (i: number) =>
    createFirnClients(net.anvil.rpcUrl, net.anvil.accounts[i]!.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
  v1 = at(2);
  v2 = at(3);
  enclaveId = net.node.identity!.enclaveId;
}, 120_000);
afterAll(() => net?.stop());

/** Move chain time to `offset` seconds into the next epoch; returns that epoch's end. */
async function nextEpoch(offset = 0): Promise<bigint> {
  const st = await getRewardsState(v1);
  const block = await v1.public.getBlock({ blockTag: 'latest' });
  const start = st.genesis + (st.currentEpoch + 1n) * st.epochLength;
  await increaseTime(net.anvil.rpcUrl, Number(start + BigInt(offset) - block.timestamp));
  return start + st.epochLength;
}

const read = <T>(functionName: 'missedEpochs' | 'isUnresponsive'): Promise<T> =>
  v1.public.readContract({
    address: rewardsAddress(v1),
    abi: firnRewardsAbi,
    functionName,
    args: [enclaveId],
  }) as Promise<T>;

/** A logger that keeps the warnings and infos it is given (message and fields). */
function recorder(): Logger & { lines: { level: string; msg: string; f?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; f?: Record<string, unknown> }[] = [];
  const add = (level: string) => (msg: string, f?: Record<string, unknown>) => {
    lines.push({ level, msg, ...(f === undefined ? {} : { f }) });
  };
  const log = {
    lines,
    debug: add('debug'),
    info: add('info'),
    warn: add('warn'),
    error: add('error'),
    child: () => log,
  };
  return log;
}

function service(logger: Logger, maxResumeFeeWei?: bigint): LivenessService {
  return new LivenessService(net.node, {
    rpcUrl: net.anvil.rpcUrl,
    operatorKey: net.operator.privateKey,
    deployment: net.deployment,
    logger,
    claimRewards: false,
    resumeCheckIntervalMs: 0,
    ...(maxResumeFeeWei === undefined ? {} : { maxResumeFeeWei }),
  });
}

describe('a node back from an outage', () => {
  it('resumes its own challenges once, within the operator cap, and answers again', async () => {
    const c1 = new LivenessChallenger(v1);
    const c2 = new LivenessChallenger(v2);
    const bound = await v1.public.readContract({
      address: rewardsAddress(v1),
      abi: firnRewardsAbi,
      functionName: 'MAX_MISSED_EPOCHS',
    });
    // The outage: no liveness service, one challenge per epoch, then none.
    for (let e = 0; e <= bound; e++) {
      await nextEpoch();
      await c1.poll();
    }
    expect(c1.stats.issued).toBe(bound);
    // What those challenges cost the verifier, from the receipts: CHALLENGE_GAS bounds each one, so
    // the resume fee (MAX_MISSED_EPOCHS x (CHALLENGE_GAS + ...) x base fee) covers them (1591).
    const challengeGas = await v1.public.readContract({
      address: rewardsAddress(v1),
      abi: firnRewardsAbi,
      functionName: 'CHALLENGE_GAS',
    });
    const issuedLogs = await v1.public.getContractEvents({
      address: rewardsAddress(v1),
      abi: firnRewardsAbi,
      eventName: 'ChallengeIssued',
      args: { enclaveId },
      fromBlock: net.deployment.deployBlock,
      strict: true,
    });
    expect(issuedLogs).toHaveLength(bound);
    // The pool recorded the dearest of those challenges' epochs at the base fee each one paid and
    // the verifier count then (decision 1645): the resume cannot be priced below it.
    const pool = { address: rewardsAddress(v1), abi: firnRewardsAbi } as const;
    const [refusedGas, verifiers] = await Promise.all([
      v1.public.readContract({ ...pool, functionName: 'REFUSED_CHALLENGE_GAS' }),
      v1.public.readContract({
        address: net.deployment.verifierSet,
        abi: firnVerifierSetAbi,
        functionName: 'verifierCount',
      }),
    ]);
    let peak = 0n;
    for (const l of issuedLogs) {
      const r = await v1.public.getTransactionReceipt({ hash: l.transactionHash });
      expect(r.gasUsed).toBeLessThanOrEqual(challengeGas);
      const b = await v1.public.getBlock({ blockNumber: r.blockNumber });
      const cost = (challengeGas + (verifiers - 1n) * refusedGas) * (b.baseFeePerGas ?? 0n);
      if (cost > peak) peak = cost;
    }
    expect(peak).toBeGreaterThan(0n);
    // Kept in whole gwei, rounded up (decision 1696).
    const gwei = 10n ** 9n;
    expect(
      await v1.public.readContract({ ...pool, functionName: 'peakChallengeCost', args: [enclaveId] }),
    ).toBe(((peak + gwei - 1n) / gwei) * gwei);
    expect(await read<number>('missedEpochs')).toBe(bound);
    expect(await read<boolean>('isUnresponsive')).toBe(true);

    // Back, but the operator's cap is below the fee: one warning naming the option, nothing paid.
    const capped = recorder();
    const low = service(capped, 1n);
    await low.poll();
    await low.poll();
    const warnings = capped.lines.filter((l) => l.level === 'warn' && l.msg.includes('--max-resume-fee'));
    expect(warnings).toHaveLength(1);
    expect(BigInt(warnings[0]!.f!.resumeFeeWei as string)).toBeGreaterThan(1n);
    expect(low.stats.resumed).toBe(0);
    expect(await read<boolean>('isUnresponsive')).toBe(true);

    // Back with the default cap: it pays the fee itself, once.
    const logs = recorder();
    const svc = service(logs);
    const received = (await getRewardsState(v1)).totalReceived;
    const treasury = await v1.public.readContract({ ...pool, functionName: 'owner' });
    expect(treasury).toBe(net.deployment.timelock);
    const credited = await v1.public.readContract({
      ...pool,
      functionName: 'treasuryCredit',
      args: [treasury],
    });
    await svc.poll();
    expect(svc.stats.resumed).toBe(1);
    expect(logs.lines.filter((l) => l.msg.includes('challenges resumed'))).toHaveLength(1);
    expect(svc.stats.resumeFeesPaid).toBeGreaterThanOrEqual(3n * peak);
    // All of it to governance's treasury (the timelock), none into the reward pool.
    expect((await getRewardsState(v1)).totalReceived).toBe(received);
    expect(
      (await v1.public.readContract({ ...pool, functionName: 'treasuryCredit', args: [treasury] })) -
        credited,
    ).toBe(svc.stats.resumeFeesPaid);
    expect(await read<number>('missedEpochs')).toBe(0);
    expect(await read<boolean>('isUnresponsive')).toBe(false);

    // Challengeable again without the operator doing anything: the next epoch's challenge is
    // answered by the enclave through the service.
    await nextEpoch();
    await c1.poll();
    expect(c1.stats.issued).toBe(bound + 1);
    await svc.poll();
    expect(svc.stats.answered).toBe(1);
    await c1.poll();
    expect(c1.stats.answered).toBe(1);
    await svc.poll();
    expect(svc.stats.resumed).toBe(1); // no second payment

    // Late in this epoch: a challenge whose window would pass the epoch's end is not sent.
    const st = await getRewardsState(v1);
    const end = st.genesis + (st.currentEpoch + 1n) * st.epochLength;
    const head = await v1.public.getBlock({ blockTag: 'latest' });
    await increaseTime(net.anvil.rpcUrl, Number(end - BigInt(ANSWER_WINDOW) - 1n - head.timestamp));
    await c2.poll();
    expect(c2.stats.issued).toBe(0);
    expect(c2.stats.skippedLate).toBeGreaterThan(0);
    // Early enough in the next epoch it is, and its whole window lies inside that epoch.
    const nextEnd = await nextEpoch(2);
    await c2.poll();
    expect(c2.stats.issued).toBe(1);
    const logsOf = await v2.public.getContractEvents({
      address: rewardsAddress(v2),
      abi: firnRewardsAbi,
      eventName: 'ChallengeIssued',
      args: { verifier: net.anvil.accounts[3]!.address },
      fromBlock: net.deployment.deployBlock,
      strict: true,
    });
    const issued = await getChallenge(v2, logsOf[logsOf.length - 1]!.args.challengeId);
    expect(issued.deadline).toBeLessThan(nextEnd);
    c1.stop();
    c2.stop();
  }, 60_000);

  it('does not pay again when the node went silent again without answering since its resume', async () => {
    const c1 = new LivenessChallenger(v1);
    const bound = await v1.public.readContract({
      address: rewardsAddress(v1),
      abi: firnRewardsAbi,
      functionName: 'MAX_MISSED_EPOCHS',
    });
    /** Challenge the silent node once an epoch until the pool marks it unresponsive. */
    const silence = async () => {
      for (let e = 0; e < 2 * bound + 2 && (await read<number>('missedEpochs')) < bound; e++) {
        await nextEpoch();
        await c1.poll();
      }
      expect(await read<boolean>('isUnresponsive')).toBe(true);
    };
    await silence();
    const logs = recorder();
    const svc = service(logs);
    await svc.poll();
    expect(svc.stats.resumed).toBe(1);
    // Its answers fail (here: the service does not run) for MAX_MISSED_EPOCHS challenged epochs.
    await silence();
    await svc.poll();
    await svc.poll();
    expect(svc.stats.answered).toBe(0);
    expect(svc.stats.resumed).toBe(1);
    const again = logs.lines.filter(
      (l) => l.level === 'warn' && l.msg.includes('since its last automatic resume'),
    );
    expect(again).toHaveLength(1);
    expect(await read<boolean>('isUnresponsive')).toBe(true);

    // The operator resumes by hand: `firn rewards resume`, refused above --max-fee.
    const dir = mkdtempSync(join(tmpdir(), 'firn-resume-'));
    const devnet = join(dir, 'state.json');
    writeFileSync(devnet, JSON.stringify(stateOf(net, net.rootPem)));
    const keyFile = join(dir, 'operator.key');
    writeFileSync(keyFile, net.operator.privateKey, { mode: 0o600 });
    await expect(rewardsResume({ devnet, keyFile, maxFee: '0.000000000000000001' })).rejects.toThrow(
      /--max-fee/,
    );
    expect(await read<boolean>('isUnresponsive')).toBe(true);
    const byHand = await rewardsResume({ devnet, keyFile });
    expect(byHand.resumed.map((r) => r.enclaveId)).toEqual([enclaveId]);
    expect(await read<boolean>('isUnresponsive')).toBe(false);
    expect((await rewardsResume({ devnet, keyFile })).skipped).toEqual([enclaveId]);

    // Silent again with its enclave down (last: the node stays down): nothing is paid for a node
    // that could not answer, and the warning says why, once.
    await silence();
    await net.node.supervisor.stop();
    const downLogs = recorder();
    const down = service(downLogs);
    await down.poll();
    await down.poll();
    expect(down.stats.resumed).toBe(0);
    expect(downLogs.lines.filter((l) => l.msg.includes('enclave does not answer'))).toHaveLength(1);
    expect(await read<boolean>('isUnresponsive')).toBe(true);
    c1.stop();
  }, 60_000);
});
