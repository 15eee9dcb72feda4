import { runJob } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcCall } from '../../packages/chain/test/rpcProxy.ts';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';
import { tinyInferenceJob } from '../helpers/tinyInferenceJob.ts';

// The reverse of tests/attacks/verifier-clock-ahead.test.ts: a requester whose host clock runs
// 30 minutes behind the chain. The node judges a signed upload intent on chain time (its chain
// monitor), so an intent that expires 10 minutes after the requester's own clock had expired 20
// minutes before it was sent: every upload was refused and no job could start. The SDK sets the
// expiry forward from the later of its clock and chain time (docs/decisions/1460).
const SKEW = 1800;
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
  // Chain time only moves forward for the node and its enclave: both follow it at once.
  await rpcCall(net.anvil.rpcUrl, 'anvil_setTime', [Math.floor(Date.now() / 1000) + SKEW]);
  await rpcCall(net.anvil.rpcUrl, 'evm_mine', []);
  // Let the node's chain monitor read the new head (it reads every 2 s).
  await new Promise((r) => setTimeout(r, 2_500));
}, 120_000);
afterAll(() => net?.stop());

describe('a requester on a host clock behind the chain', () => {
  it('uploads its inputs and runs an honest job', async () => {
    const kem = await generateKemKeyPair();
    const r = await runJob(await tinyInferenceJob(net, kem, [1, 2, 3]));
    expect(r.proofCheck).toEqual({ ok: true, reasons: [] });
    expect(r.outputs.length).toBeGreaterThan(0);
  }, 60_000);
});
