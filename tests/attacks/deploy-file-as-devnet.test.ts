import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnvilInstance, startAnvil } from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveChain } from '../../packages/cli/src/chainArgs.ts';

// A careless operator gives another chain's deployment file (or a devnet state file) as --devnet
// together with --rpc of some chain: the chain-id check that --deployment gets is skipped, so every
// address is read on a chain where it names unrelated (or attacker-deployed) contracts.
const dir = mkdtempSync(join(tmpdir(), 'firn-devnet-atk-'));
let anvil: AnvilInstance;
beforeAll(async () => {
  anvil = await startAnvil({ accounts: 1 });
});
afterAll(async () => {
  await anvil?.stop();
});

describe('attack: a file of another chain passed as --devnet with --rpc', () => {
  it('is refused when the RPC answers another chain id', async () => {
    const file = join(dir, 'deployment.json');
    const a = (n: number) => `0x${String(n).repeat(40)}`;
    writeFileSync(
      file,
      JSON.stringify({
        chainId: 11155111,
        registry: a(1),
        verifierSet: a(2),
        jobMarket: a(3),
        dataLedger: a(4),
        deployBlock: '1',
      }),
    );
    expect(anvil.chainId).not.toBe(11155111);
    await expect(resolveChain({ devnet: file, rpc: anvil.rpcUrl })).rejects.toMatchObject({
      code: 'E_INVALID_INPUT',
    });
  }, 60_000);
});
