import {
  ChainRevertedError,
  claimNodeReward,
  claimVerifierReward,
  createFirnClients,
  type FirnClients,
  firnRewardsAbi,
  getNodeEpochReward,
  getRewardsState,
  getResumeFee,
  getVerifierEpochReward,
  getWithdrawable,
  requireWallet,
  resumeChallenges,
  resumeFeeAt,
  rewardsAddress,
  withdrawCredits,
} from '@firn/chain';
import { type Hex, InvalidInputError } from '@firn/core';
import type { Command } from 'commander';
import { type Address, formatEther, isAddress, parseEventLogs } from 'viem';
import { etherArg, readKey, resolveChain } from '../chainArgs.ts';
import { printError, printJson, table } from '../output.ts';

export interface RewardsOptions {
  rpc?: string;
  registry?: string;
  market?: string;
  deployment?: string;
  devnet?: string;
  keyFile?: string;
  node?: string[];
  verifier?: string[];
  epochs?: string;
  json?: boolean;
  /** `rewards resume`: most ether to pay per node (default 0.05). */
  maxFee?: string;
}

export interface RewardsShow {
  pool: {
    currentEpoch: string;
    epochLength: string;
    receivedWei: string;
    allocatedWei: string;
    withdrawnWei: string;
  };
  nodes: { enclaveId: Hex; epoch: string; answers: number; points: string; pendingWei: string }[];
  verifiers: { verifier: Address; epoch: string; points: string; pendingWei: string }[];
  withdrawableWei?: { account: Address; rewards: string; jobMarket: string; registry: string };
}

const hex32 = (v: string) => {
  if (!/^0x[0-9a-fA-F]{64}$/.test(v))
    throw new InvalidInputError(`${v} is not an Enclave ID (32 bytes of 0x hex)`);
  return v as Hex;
};
const addr = (v: string) => {
  if (!isAddress(v)) throw new InvalidInputError(`${v} is not an address`);
  return v as Address;
};

/** `--epochs`: how many recent epochs, a positive integer (named when mistyped). */
function epochsBack(o: RewardsOptions): bigint {
  const v = o.epochs ?? '5';
  if (!/^\d+$/.test(v) || BigInt(v) === 0n)
    throw new InvalidInputError(`--epochs must be a positive integer, got ${JSON.stringify(v)}`);
  return BigInt(v);
}

async function clientsFor(o: RewardsOptions, needKey: boolean): Promise<FirnClients> {
  const chain = await resolveChain(o);
  const key =
    needKey || o.keyFile || process.env.FIRN_OPERATOR_KEY
      ? readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_OPERATOR_KEY' })
      : undefined;
  return createFirnClients(chain.rpcUrl, key, chain.deployment, { pollingIntervalMs: 200 });
}

function nodesOf(o: RewardsOptions, devnet?: Record<string, unknown>): Hex[] {
  if (o.node && o.node.length > 0) return o.node.map(hex32);
  const nodes = (devnet?.nodes as { enclaveId?: string }[] | undefined) ?? [];
  return nodes.map((n) => hex32(String(n.enclaveId)));
}

/**
 * The pool's totals and, for the last `epochs` ended epochs (default 5), each named node's and
 * verifier's points and claimable wei; with a key, what that account may withdraw.
 */
export async function rewardsShow(o: RewardsOptions): Promise<RewardsShow> {
  const back = epochsBack(o);
  const chain = await resolveChain(o);
  const c = await clientsFor(o, false);
  const st = await getRewardsState(c);
  const first = st.currentEpoch > back ? st.currentEpoch - back : 0n;
  const out: RewardsShow = {
    pool: {
      currentEpoch: st.currentEpoch.toString(),
      epochLength: st.epochLength.toString(),
      receivedWei: st.totalReceived.toString(),
      allocatedWei: st.totalAllocated.toString(),
      withdrawnWei: st.totalWithdrawn.toString(),
    },
    nodes: [],
    verifiers: [],
  };
  for (const enclaveId of nodesOf(o, chain.devnet))
    for (let e = first; e <= st.currentEpoch; e++) {
      const r = await getNodeEpochReward(c, { epoch: e, enclaveId });
      if (r.points === 0n && r.answers === 0) continue;
      out.nodes.push({
        enclaveId,
        epoch: e.toString(),
        answers: r.answers,
        points: r.points.toString(),
        pendingWei: r.pending.toString(),
      });
    }
  for (const v of (o.verifier ?? []).map(addr))
    for (let e = first; e <= st.currentEpoch; e++) {
      const r = await getVerifierEpochReward(c, { epoch: e, verifier: v });
      if (r.points === 0n) continue;
      out.verifiers.push({
        verifier: v,
        epoch: e.toString(),
        points: r.points.toString(),
        pendingWei: r.pending.toString(),
      });
    }
  if (c.wallet) {
    const me = requireWallet(c).account.address;
    const [rewards, jobMarket, registry] = await Promise.all([
      getWithdrawable(c, 'rewards', me),
      getWithdrawable(c, 'jobMarket', me),
      getWithdrawable(c, 'registry', me),
    ]);
    out.withdrawableWei = {
      account: me,
      rewards: rewards.toString(),
      jobMarket: jobMarket.toString(),
      registry: registry.toString(),
    };
  }
  return out;
}

/**
 * Claim every ended epoch's share of the named nodes (credited to their operators) and verifiers,
 * then withdraw the signer's credited rewards. Returns the claims made and the wei withdrawn.
 */
export async function rewardsClaim(
  o: RewardsOptions,
): Promise<{ claims: { who: string; epoch: string; wei: string; tx: Hex }[]; withdrawnWei: string }> {
  const back = epochsBack(o);
  const chain = await resolveChain(o);
  const c = await clientsFor(o, true);
  const st = await getRewardsState(c);
  const first = st.currentEpoch > back ? st.currentEpoch - back : 0n;
  const claims: { who: string; epoch: string; wei: string; tx: Hex }[] = [];
  for (const enclaveId of nodesOf(o, chain.devnet))
    for (let e = first; e < st.currentEpoch; e++) {
      const r = await getNodeEpochReward(c, { epoch: e, enclaveId });
      if (r.points === 0n) continue;
      const res = await claimNodeReward(c, { epoch: e, enclaveId }).catch(unlessNothingToClaim);
      if (!res) continue;
      const [ev] = parseEventLogs({
        abi: firnRewardsAbi,
        eventName: 'NodeRewardClaimed',
        logs: res.receipt.logs,
      });
      claims.push({
        who: enclaveId,
        epoch: e.toString(),
        wei: String(ev?.args.amount ?? r.pending),
        tx: res.hash,
      });
    }
  const me = requireWallet(c).account.address;
  const verifiers = (o.verifier ?? []).map(addr);
  for (const v of verifiers.length > 0 ? verifiers : [me])
    for (let e = first; e < st.currentEpoch; e++) {
      const r = await getVerifierEpochReward(c, { epoch: e, verifier: v });
      if (r.points === 0n) continue;
      const res = await claimVerifierReward(c, { epoch: e, verifier: v }).catch(unlessNothingToClaim);
      if (!res) continue;
      const [ev] = parseEventLogs({
        abi: firnRewardsAbi,
        eventName: 'VerifierRewardClaimed',
        logs: res.receipt.logs,
      });
      claims.push({ who: v, epoch: e.toString(), wei: String(ev?.args.amount ?? r.pending), tx: res.hash });
    }
  const owed = await getWithdrawable(c, 'rewards', me);
  if (owed > 0n) await withdrawCredits(c, 'rewards');
  return { claims, withdrawnWei: owed.toString() };
}

/** A claim of an epoch already claimed refuses with NothingToClaim (in simulation: no gas spent). */
function unlessNothingToClaim(e: unknown): undefined {
  if (e instanceof ChainRevertedError && e.errorName === 'NothingToClaim') return undefined;
  throw e;
}

function withOptions(c: Command): Command {
  return c
    .option('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--registry <address>', 'registry contract')
    .option('--market <address>', 'job market contract')
    .option('--deployment <file>', 'deployment JSON')
    .option('--devnet <file>', 'devnet state file (its nodes are shown by default)')
    .option('--key-file <file>', 'private key file (or env FIRN_OPERATOR_KEY)')
    .option('--node <enclaveId...>', 'Enclave IDs to show or claim for')
    .option('--verifier <address...>', 'verifiers to show or claim for')
    .option('--epochs <n>', 'how many recent epochs to look at', '5')
    .option('--json', 'print JSON');
}

/**
 * The operator: have each named node the pool marked unresponsive challenged again
 * (`resumeChallenges`, decisions 1576, 1591), paying its resume fee priced at 5/4 of the latest
 * base fee and never below the dearest epoch of challenges its spell cost the verifiers (decision
 * 1645), refused above `--max-fee` ether (default 0.05). The whole payment, excess included, is
 * credited to governance's treasury, not the reward pool (decision 1646). A node
 * that is not unresponsive is skipped. Throws E_INVALID_INPUT when a fee is above the cap,
 * E_CHAIN_REVERTED (NotNodeOperator, ResumeFeeTooLow) when the pool refuses.
 */
export async function rewardsResume(
  o: RewardsOptions,
): Promise<{ resumed: { enclaveId: Hex; wei: string; tx: Hex }[]; skipped: Hex[] }> {
  const chain = await resolveChain(o);
  const c = await clientsFor(o, true);
  const cap = etherArg(o.maxFee ?? '0.05', '--max-fee');
  const base = { address: rewardsAddress(c), abi: firnRewardsAbi } as const;
  const resumed: { enclaveId: Hex; wei: string; tx: Hex }[] = [];
  const skipped: Hex[] = [];
  for (const enclaveId of nodesOf(o, chain.devnet)) {
    const [missed, bound] = await Promise.all([
      c.public.readContract({ ...base, functionName: 'missedEpochs', args: [enclaveId] }),
      c.public.readContract({ ...base, functionName: 'MAX_MISSED_EPOCHS' }),
    ]);
    if (missed < bound) {
      skipped.push(enclaveId);
      continue;
    }
    const quote = await getResumeFee(c, enclaveId);
    const value = resumeFeeAt(quote, (quote.baseFee * 5n) / 4n + 1n);
    if (value > cap)
      throw new InvalidInputError(
        `the resume fee of ${formatEther(value)} ETH is above --max-fee ${formatEther(cap)} ETH: raise --max-fee`,
      );
    const res = await resumeChallenges(c, { enclaveId, value });
    resumed.push({ enclaveId, wei: value.toString(), tx: res.hash });
  }
  return { resumed, skipped };
}

export function registerRewards(program: Command): void {
  const r = program.command('rewards').description('capacity rewards: epochs, liveness points, claims');
  withOptions(r.command('show'))
    .description('pool totals, points and claimable rewards per epoch')
    .action(async (o: RewardsOptions) => {
      try {
        const s = await rewardsShow(o);
        if (o.json) return printJson(s);
        const p = s.pool;
        process.stdout.write(
          `epoch ${p.currentEpoch} (${p.epochLength} s each); pool received ${formatEther(BigInt(p.receivedWei))} ETH, allocated ${formatEther(BigInt(p.allocatedWei))}, withdrawn ${formatEther(BigInt(p.withdrawnWei))}\n\n`,
        );
        process.stdout.write(
          `${table(
            ['WHO', 'EPOCH', 'ANSWERS', 'POINTS', 'CLAIMABLE (ETH)'],
            [
              ...s.nodes.map((n) => [
                n.enclaveId,
                n.epoch,
                String(n.answers),
                n.points,
                formatEther(BigInt(n.pendingWei)),
              ]),
              ...s.verifiers.map((v) => [
                v.verifier,
                v.epoch,
                '-',
                v.points,
                formatEther(BigInt(v.pendingWei)),
              ]),
            ],
          )}\n`,
        );
        if (s.withdrawableWei)
          process.stdout.write(
            `\n${s.withdrawableWei.account} may withdraw: rewards ${formatEther(BigInt(s.withdrawableWei.rewards))} ETH, job market ${formatEther(BigInt(s.withdrawableWei.jobMarket))} ETH, registry ${formatEther(BigInt(s.withdrawableWei.registry))} ETH\n`,
          );
      } catch (e) {
        printError(e, Boolean(o.json));
        process.exitCode = 1;
      }
    });
  withOptions(r.command('claim'))
    .description('claim ended epochs (credited to whoever earned them), then withdraw your rewards')
    .action(async (o: RewardsOptions) => {
      try {
        const res = await rewardsClaim(o);
        if (o.json) return printJson(res);
        for (const cl of res.claims)
          process.stdout.write(
            `claimed epoch ${cl.epoch} for ${cl.who}: ${formatEther(BigInt(cl.wei))} ETH (${cl.tx})\n`,
          );
        process.stdout.write(`withdrawn: ${formatEther(BigInt(res.withdrawnWei))} ETH\n`);
      } catch (e) {
        printError(e, Boolean(o.json));
        process.exitCode = 1;
      }
    });
  withOptions(r.command('resume'))
    .description(
      "pay the resume fee (to governance's treasury) so verifiers challenge an unresponsive node again (decisions 1591, 1646)",
    )
    .option('--max-fee <ether>', 'most ether to pay per node', '0.05')
    .action(async (o: RewardsOptions) => {
      try {
        const res = await rewardsResume(o);
        if (o.json) return printJson(res);
        for (const r of res.resumed)
          process.stdout.write(
            `resumed ${r.enclaveId}: ${formatEther(BigInt(r.wei))} ETH to governance's treasury (${r.tx})\n`,
          );
        for (const id of res.skipped) process.stdout.write(`${id}: not unresponsive, nothing to pay\n`);
      } catch (e) {
        printError(e, Boolean(o.json));
        process.exitCode = 1;
      }
    });
}
