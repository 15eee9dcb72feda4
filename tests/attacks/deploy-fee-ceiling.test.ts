import { parseTransaction, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devnetAccounts } from '../../packages/chain/src/anvil.ts';
import { type LyingFeeRpc, startLyingFeeRpc } from '../helpers/lyingFeeRpc.ts';
import { deployFirn } from '../../packages/chain/src/deploy.ts';
import { resolveFeeCeiling } from '../../packages/chain/src/clients.ts';
import { FeeCeilingError, MAX_WRITE_GAS } from '../../packages/chain/src/writeContractAndWait.ts';

// Decision 1470: "the node, the verifier and every CLI command" sign no fee above the ceiling,
// whatever the RPC says. deployFirn (firn deploy) sends its contract creations through viem's
// deployContract, which fills fees and gas from the RPC. A hostile RPC names a tip of 100,000 gwei:
// a creation of a few million gas would pay hundreds of ETH of tip.
// The devnet mnemonic's first account (public keys; the fake RPC never reaches a real chain).
const KEY = devnetAccounts(1)[0]!.privateKey;
const GWEI = 10n ** 9n;
let rpc: LyingFeeRpc;

beforeAll(async () => {
  rpc = await startLyingFeeRpc({ estimateGas: 3_000_000n, maxPriorityFeePerGas: 100_000n * GWEI });
});
afterAll(() => rpc?.close());

const deployThrough = (url: string) =>
  deployFirn({
    rpcUrl: url,
    deployerKey: KEY as Hex,
    profile: 'devnet',
    governanceDelay: 0,
    minNodeStake: 1n,
    minVerifierStake: 1n,
    unbondingPeriod: 60,
    challengeWindow: 60,
    slashAmount: 1n,
    epochLength: 60,
    answerWindow: 30,
    pollingIntervalMs: 20,
  } as Parameters<typeof deployFirn>[0]);

describe('a deployment under a lying RPC', () => {
  it('signs no fee above the fee ceiling', async () => {
    await deployThrough(rpc.url).catch(() => undefined);
    const ceiling = resolveFeeCeiling({}, {});
    for (const raw of rpc.sent) {
      const tx = parseTransaction(raw);
      expect(tx.maxPriorityFeePerGas ?? 0n).toBeLessThanOrEqual(ceiling.maxPriorityFeePerGas);
      expect(tx.maxFeePerGas ?? tx.gasPrice ?? 0n).toBeLessThanOrEqual(ceiling.maxFeePerGas);
    }
  }, 20_000);
});

// Decision 1540: every write signs a gas limit of at most MAX_WRITE_GAS (30M), and a contract
// creation is a write. A lying eth_estimateGas of 1e9 gas at honest fees (1 gwei base, 1 gwei tip)
// would let a creation cost up to about 2 ETH (1e9 x 2.2 gwei); it must be refused before anything is signed.
describe('a deployment under an RPC inflating its gas estimate', () => {
  let inflated: LyingFeeRpc;
  beforeAll(async () => {
    inflated = await startLyingFeeRpc({ estimateGas: 1_000_000_000n, maxPriorityFeePerGas: GWEI });
  });
  afterAll(() => inflated?.close());

  it('fails with FeeCeilingError naming the gas limit, and signs nothing', async () => {
    const err = await deployThrough(inflated.url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FeeCeilingError);
    const f = err as FeeCeilingError;
    expect(f.code).toBe('E_CHAIN');
    expect(f.fee).toBe('gas');
    expect(f.ceiling).toBe(MAX_WRITE_GAS);
    expect(f.wanted).toBeGreaterThan(MAX_WRITE_GAS);
    expect(f.message).toMatch(/deploy FirnVerifierSet: not sent: its gas limit would be \d+ gas/);
    expect(inflated.sent).toEqual([]);
  }, 20_000);
});
