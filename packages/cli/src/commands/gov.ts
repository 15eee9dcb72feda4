import {
  allowMeasurementCall,
  createFirnClients,
  type FirnClients,
  type GovernanceStep,
  getTimelockDelay,
  governAndExecute,
  isMeasurementAllowed,
  moveUnallocatedCall,
  type PausableContract,
  pauseCall,
  parseParameterName,
  revokeMeasurementCall,
  rewardPoolBindingOf,
  setAdmissionCall,
  setParameterCall,
  setRewardPoolCall,
  type TimelockCall,
  unallocatedOf,
} from '@firn/chain';
import { type Hex, InvalidInputError, TEE_TYPES, type TeeTypeName } from '@firn/core';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { type Address, formatEther, isAddress } from 'viem';
import { readKey, resolveChain } from '../chainArgs.ts';
import { printError, printJson } from '../output.ts';

export interface GovOptions {
  rpc?: string;
  registry?: string;
  market?: string;
  deployment?: string;
  devnet?: string;
  keyFile?: string;
  json?: boolean;
  /** Mine blocks while waiting (anvil) so chain time follows wall time; default on with --devnet. */
  mine?: boolean;
}

/** The result a governance command prints. */
export interface GovResult {
  action: string;
  operationId: Hex;
  timelock: Address;
  delaySeconds: number;
  scheduleTx: Hex;
  executeTx: Hex;
  details?: Record<string, unknown>;
}

function teeTypeOf(v: string): number {
  if (v in TEE_TYPES) return TEE_TYPES[v as TeeTypeName];
  const n = Number(v);
  if (Number.isInteger(n) && Object.values(TEE_TYPES).includes(n as never)) return n;
  throw new InvalidInputError(`unknown TEE type ${v}: one of ${Object.keys(TEE_TYPES).join(', ')}`);
}

function measurementOf(v: string): Hex {
  if (!/^0x[0-9a-fA-F]{64}$/.test(v)) throw new InvalidInputError('measurement must be 32 bytes of 0x hex');
  return v as Hex;
}

function addressOf(v: string, what: string): Address {
  if (!isAddress(v, { strict: false })) throw new InvalidInputError(`${what} must be a 20-byte 0x address`);
  return v as Address;
}

function sameAddress(a: Address, b: Address): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * The refusals of `registry.setRewardPool(pool)` checked before scheduling, since each would
 * otherwise come back only after the timelock delay (decision 1756): `pool` must have code and
 * name this registry and its verifier set (`registry()`, `verifierSet()`). Throws
 * InvalidInputError naming what to deploy or give instead; FirnError('E_CHAIN') when the chain
 * cannot be read.
 */
export async function checkRewardPool(c: FirnClients, pool: Address): Promise<void> {
  const code = await c.public.getCode({ address: pool });
  if (code === undefined || code === '0x')
    throw new InvalidInputError(`no contract at ${pool}: give the FirnRewards deployment's address`);
  const b = await rewardPoolBindingOf(c, pool);
  if (b.poolRegistry === undefined || b.poolVerifierSet === undefined)
    throw new InvalidInputError(
      `${pool} is not a FirnRewards pool (it does not answer registry()/verifierSet()): give the FirnRewards deployment's address`,
    );
  if (!sameAddress(b.poolRegistry, b.registry) || !sameAddress(b.poolVerifierSet, b.verifierSet))
    throw new InvalidInputError(
      `the pool at ${pool} serves registry ${b.poolRegistry} and verifier set ${b.poolVerifierSet}, not this registry ${b.registry} and its verifier set ${b.verifierSet}: deploy FirnRewards with this registry and verifier set`,
    );
}

function pausableOf(v: string | undefined): PausableContract[] {
  if (v === undefined || v === 'all') return ['jobMarket', 'registry'];
  if (v === 'market' || v === 'jobMarket') return ['jobMarket'];
  if (v === 'registry') return ['registry'];
  throw new InvalidInputError('--contract must be market, registry or all');
}

/**
 * Show the stages of a governance operation on `stream`: a cli-progress bar over the timelock
 * delay when it is a TTY, else one plain line per stage and one per elapsed second.
 */
export function governanceProgress(stream: NodeJS.WriteStream = process.stderr): (s: GovernanceStep) => void {
  let bar: cliProgress.SingleBar | undefined;
  let lastShown = -1;
  return (s) => {
    if (s.step === 'scheduled') {
      stream.write(
        `scheduled operation ${s.op.id} on timelock ${s.op.timelock} (tx ${s.op.scheduleTx}); executable from chain time ${s.op.readyAt}\n`,
      );
      return;
    }
    if (s.step === 'waiting') {
      const { elapsed, total } = s.progress;
      if (stream.isTTY) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              format: 'timelock delay [{bar}] {value}/{total} s',
              stream,
              hideCursor: true,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(total, 1), elapsed);
        } else bar.update(elapsed);
      } else if (elapsed !== lastShown) {
        lastShown = elapsed;
        stream.write(`waiting for the timelock delay: ${elapsed}/${total} s\n`);
      }
      return;
    }
    if (bar) {
      bar.update(bar.getTotal());
      bar.stop();
      bar = undefined;
    }
    stream.write(`executed operation ${s.op.id} (tx ${s.hash})\n`);
  };
}

async function anvilMine(rpcUrl: string): Promise<void> {
  await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'evm_mine', params: [] }),
  });
}

/** Proposer key: --key-file, FIRN_GOVERNANCE_KEY, or the deployer of a devnet state file. */
async function govClients(o: GovOptions): Promise<{ clients: FirnClients; rpcUrl: string; devnet: boolean }> {
  const chain = await resolveChain(o);
  let key: Hex;
  const deployer = (chain.devnet?.accounts as { deployer?: { privateKey?: string } } | undefined)?.deployer;
  if (!o.keyFile && !process.env.FIRN_GOVERNANCE_KEY && deployer?.privateKey)
    key = deployer.privateKey as Hex;
  else key = readKey({ ...(o.keyFile ? { keyFile: o.keyFile } : {}), env: 'FIRN_GOVERNANCE_KEY' });
  if (chain.deployment.timelock === undefined)
    throw new InvalidInputError('this deployment names no timelock: it predates timelocked governance');
  return {
    clients: createFirnClients(chain.rpcUrl, key, chain.deployment, { pollingIntervalMs: 200 }),
    rpcUrl: chain.rpcUrl,
    devnet: chain.devnet !== undefined,
  };
}

/**
 * Schedule `calls` on the timelock, wait for its delay with visible progress, execute, and return
 * what happened. Throws ChainRevertedError (e.g. AccessControlUnauthorizedAccount for a key without
 * the proposer role, or the target's own error at execution).
 */
export async function runGovernance(
  o: GovOptions,
  action: string,
  build: (c: FirnClients) => Promise<{ calls: TimelockCall[]; details?: Record<string, unknown> }>,
  /** Where the stages go (default: a progress bar or plain lines on stderr, none with --json). */
  onStep: ((s: GovernanceStep) => void) | undefined = o.json ? undefined : governanceProgress(),
): Promise<GovResult> {
  const { clients, rpcUrl, devnet } = await govClients(o);
  const { calls, details } = await build(clients);
  const mine = o.mine ?? devnet;
  const { op, execution } = await governAndExecute(clients, {
    timelock: clients.addresses.timelock!,
    calls,
    pollMs: 250,
    ...(onStep === undefined ? {} : { onStep }),
    ...(mine ? { nudge: () => anvilMine(rpcUrl) } : {}),
  });
  return {
    action,
    operationId: op.id,
    timelock: op.timelock,
    delaySeconds: Number(await getTimelockDelay(clients, op.timelock)),
    scheduleTx: op.scheduleTx,
    executeTx: execution.hash,
    ...(details === undefined ? {} : { details }),
  };
}

function print(r: GovResult, json: boolean | undefined): void {
  if (json) {
    printJson(r);
    return;
  }
  process.stdout.write(`${r.action}: done (operation ${r.operationId}, executed in ${r.executeTx})\n`);
  if (r.details)
    for (const [k, v] of Object.entries(r.details)) process.stdout.write(`  ${k}: ${String(v)}\n`);
}

function withChainOptions(c: Command): Command {
  return c
    .option('--rpc <url>', 'JSON-RPC URL of the chain')
    .option('--registry <address>', 'registry contract (its owner is the timelock)')
    .option('--market <address>', 'job market contract')
    .option('--deployment <file>', 'deployment JSON')
    .option('--devnet <file>', 'devnet state file (uses its deployer as proposer unless --key-file)')
    .option('--key-file <file>', 'proposer/executor private key file (or env FIRN_GOVERNANCE_KEY)')
    .option('--no-mine', 'do not mine blocks while waiting (a chain that produces blocks by itself)')
    .option('--json', 'print JSON');
}

async function act(o: GovOptions, f: () => Promise<GovResult>): Promise<void> {
  try {
    print(await f(), o.json);
  } catch (e) {
    printError(e, Boolean(o.json));
    process.exitCode = 1;
  }
}

interface MeasurementFlags {
  measurement?: string;
  tee: string;
}

/** `<teeType> <measurement>` positionally, or `--measurement M [--tee T]` (T defaults to simulated). */
export function measurementArgs(
  teeArg: string | undefined,
  mArg: string | undefined,
  o: MeasurementFlags,
): { tee: string; m: string } {
  if (teeArg !== undefined && mArg !== undefined) return { tee: teeArg, m: mArg };
  const m = o.measurement ?? (teeArg !== undefined && teeArg.startsWith('0x') ? teeArg : undefined);
  if (m === undefined)
    throw new InvalidInputError('give the measurement: --measurement 0x… (and --tee sgx|tdx|simulated)');
  return { tee: teeArg !== undefined && !teeArg.startsWith('0x') ? teeArg : o.tee, m };
}

/**
 * `gov set-param NAME VALUE`: the value as an unsigned integer for parameter NAME (units: wei for
 * stakes, fees and bonds; seconds for periods; basis points for *Bps; a count for livenessTarget;
 * setParameterCall). Throws E_INVALID_INPUT naming the parameter: an unknown NAME (with the known
 * ones), or a VALUE that is not plain decimal digits (e.g. "1e18", "-1", "0x10", "5 ETH").
 */
export function paramValueArg(name: string, value: string): bigint {
  const { param } = parseParameterName(name);
  const unit = /Bps$/.test(param)
    ? 'basis points'
    : /Period|Window|Timeout|Length|Delay/i.test(param)
      ? 'seconds'
      : param === 'livenessTarget'
        ? 'a count'
        : 'wei';
  if (!/^\d{1,78}$/.test(value))
    throw new InvalidInputError(
      `set-param ${name}: value ${JSON.stringify(value)} is not an unsigned integer; give plain decimal digits (${unit}), e.g. ${unit === 'wei' ? '1000000000000000000 for 1 ETH' : unit === 'basis points' ? '500 for 5%' : '3600'}`,
    );
  return BigInt(value);
}

export function registerGov(program: Command): void {
  const gov = program
    .command('gov')
    .description('governance through the timelock: schedule, wait for the delay, execute');
  withChainOptions(gov.command('allow-measurement'))
    .description('allow-list a measurement for a TEE type')
    .argument('[teeType]', 'simulated | sgx | tdx (or 1..3); or --tee')
    .argument('[measurement]', '32-byte measurement digest, 0x hex; or --measurement')
    .option('--measurement <hex>', '32-byte measurement digest, 0x hex')
    .option('--tee <type>', 'simulated | sgx | tdx (or 1..3)', 'simulated')
    .action((teeArg: string | undefined, mArg: string | undefined, o: GovOptions & MeasurementFlags) =>
      act(o, async () => {
        const { tee, m } = measurementArgs(teeArg, mArg, o);
        return runGovernance(o, 'allow-measurement', async (c) => ({
          calls: [
            allowMeasurementCall(c.addresses, { teeType: teeTypeOf(tee), measurement: measurementOf(m) }),
          ],
          details: { teeType: tee, measurement: m },
        }));
      }),
    );
  withChainOptions(gov.command('revoke-measurement'))
    .description('revoke a measurement; its nodes become ineligible (proofs already submitted stay valid)')
    .argument('[teeType]', 'simulated | sgx | tdx (or 1..3); or --tee')
    .argument('[measurement]', '32-byte measurement digest, 0x hex; or --measurement')
    .option('--measurement <hex>', '32-byte measurement digest, 0x hex')
    .option('--tee <type>', 'simulated | sgx | tdx (or 1..3)', 'simulated')
    .action((teeArg: string | undefined, mArg: string | undefined, o: GovOptions & MeasurementFlags) =>
      act(o, async () => {
        const { tee, m } = measurementArgs(teeArg, mArg, o);
        return runGovernance(o, 'revoke-measurement', async (c) => {
          const args = { teeType: teeTypeOf(tee), measurement: measurementOf(m) };
          // A mistyped digest or a forgotten --tee would revoke nothing and still report "done".
          if (!(await isMeasurementAllowed(c, args)))
            throw new InvalidInputError(
              `measurement ${m} is not on the ${tee} allow-list: nothing to revoke (check the digest and --tee)`,
            );
          return {
            calls: [revokeMeasurementCall(c.addresses, args)],
            details: { teeType: tee, measurement: m },
          };
        });
      }),
    );
  withChainOptions(gov.command('set-param'))
    .description(
      'set one parameter (wei, seconds, basis points), e.g. market.protocolFeeBps 500; the others stay',
    )
    .argument('<name>', 'contract.parameter, e.g. registry.registrationFee, rewards.epochBudgetBps')
    .argument('<value>', 'unsigned integer')
    .action((name: string, value: string, o: GovOptions) =>
      act(o, () => {
        // Name and value are checked before the chain is asked anything.
        paramValueArg(name, value);
        return runGovernance(o, `set-param ${name}`, async (c) => {
          const r = await setParameterCall(c, { name, value: paramValueArg(name, value) });
          const changed = Object.keys(r.after).find((k) => r.after[k] !== r.before[k]);
          return {
            calls: [r.call],
            details: changed
              ? { [changed]: `${r.before[changed]} -> ${r.after[changed]}` }
              : { unchanged: value },
          };
        });
      }),
    );
  for (const paused of [true, false])
    withChainOptions(gov.command(paused ? 'pause' : 'unpause'))
      .description(
        paused
          ? 'stop new jobs and claims (market) and registrations (registry); withdrawals and finalization go on'
          : 'resume',
      )
      .option('--contract <name>', 'market | registry | all', 'all')
      .action((o: GovOptions & { contract?: string }) =>
        act(o, () =>
          runGovernance(o, paused ? 'pause' : 'unpause', async (c) => ({
            calls: pausableOf(o.contract).map((k) => pauseCall(c.addresses, k, paused)),
            details: { contracts: pausableOf(o.contract).join(', ') },
          })),
        ),
      );
  withChainOptions(gov.command('admit-verifier'))
    .description('admit an account to join the verifier set (it then joins with its own stake)')
    .argument('<address>', 'the account')
    .option('--revoke', 'un-admit instead')
    .action((account: string, o: GovOptions & { revoke?: boolean }) =>
      act(o, () =>
        runGovernance(o, o.revoke ? 'un-admit-verifier' : 'admit-verifier', async (c) => ({
          calls: [setAdmissionCall(c.addresses, { account: account as Address, admitted: !o.revoke })],
          details: { account },
        })),
      ),
    );
  withChainOptions(gov.command('set-reward-pool'))
    .description(
      "point the network at a new reward pool (registration fees, protocol fees and work reports move together; the market reads the registry's)",
    )
    .argument('<address>', 'the new FirnRewards deployment')
    .action((pool: string, o: GovOptions) =>
      act(o, () => {
        const to = addressOf(pool, 'the pool');
        return runGovernance(o, 'set-reward-pool', async (c) => {
          await checkRewardPool(c, to);
          return { calls: [setRewardPoolCall(c.addresses, to)], details: { pool: to } };
        });
      }),
    );
  withChainOptions(gov.command('move-unallocated'))
    .description(
      "move a retired reward pool's unallocated balance (owed to no epoch) to the registry's current pool",
    )
    .argument('<pool>', 'the retired FirnRewards deployment')
    .action((pool: string, o: GovOptions) =>
      act(o, () => {
        const from = addressOf(pool, 'the retired pool');
        return runGovernance(o, 'move-unallocated', async (c) => {
          // Checked before scheduling: each refusal would otherwise come back only after the delay.
          const u = await unallocatedOf(c, from);
          if (u.registryPool.toLowerCase() === from.toLowerCase())
            throw new InvalidInputError(
              `${from} is still the registry's reward pool: run gov set-reward-pool with its successor first`,
            );
          if (u.openWorkedEpochs !== 0n)
            throw new InvalidInputError(
              `${u.openWorkedEpochs} epoch(s) with points on ${from} are not closed yet: once each has ended, anyone can call closeEpoch(epoch) on that pool; then run this again`,
            );
          if (u.unallocated === 0n) throw new InvalidInputError(`${from} holds nothing unallocated to move`);
          return {
            calls: [moveUnallocatedCall(from)],
            details: { from, to: u.registryPool, amount: `${formatEther(u.unallocated)} ETH` },
          };
        });
      }),
    );
}
