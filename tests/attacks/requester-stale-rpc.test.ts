import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LostNodeNetwork, startLostNodeNetwork } from '../helpers/lostNodeRequester.ts';

// Promise (decision 1460, brief): a lying or lagging RPC cannot make the requester wait forever;
// its waits are bounded. Here the requester's RPC stops following the chain (a node that stopped
// syncing: its head, its state and its receipts stay where they were; it still takes transactions)
// while the node holding the job is lost. In the RPC's view the claim never lapses (its latest
// block's time never moves), so waitOutLostNode never reclaims and never gives up: it sends a
// nudge transaction (real gas, mined on the real chain) per poll, each waiting up to viem's
// receipt timeout, for ever. Chain time as the SDK counts it (origin plus own elapsed time) passed
// the lapse long ago: a bound there (give up, typed, when the chain it reads does not advance)
// would end the wait. The node is made unreachable (event stream included) once the RPC freezes,
// so only the chain can end the wait: with the same script and an honest RPC (no freeze), runJob
// reclaims and throws NodeLostError about 65 s in, 4 transactions sent.

let lost: LostNodeNetwork;

beforeAll(async () => {
  lost = await startLostNodeNetwork();
}, 180_000);
afterAll(() => lost?.stop());

describe('a requester whose RPC stops following the chain while the node holding its job is lost', () => {
  it('does not wait (and nudge) for ever: runJob settles within a bound after the claim lapsed', async () => {
    const { outcome, error, stopped, sent, jobId } = await lost.run({
      freezeRpc: true,
      nodeUnreachable: true,
    });
    expect({ outcome, stopped }).toMatchObject({ stopped: true });
    expect(outcome).not.toBe('still waiting');
    // The post, a reclaim perhaps, a nudge or two: not one transaction per poll.
    expect(sent).toBeLessThanOrEqual(4);
    // A typed give-up naming the RPC and the job, so its escrow can be reclaimed later.
    expect(outcome).toBe('threw E_CHAIN');
    expect(error?.message).toContain(lost.rpcUrl);
    expect(error?.message).toContain(jobId!);
    expect(error?.message).toMatch(/is not advancing/);
  }, 200_000);
});
