import { createFirnClients, getJob, JobStatus } from '@firn/chain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LostNodeNetwork, startLostNodeNetwork } from '../helpers/lostNodeRequester.ts';

// Promise (decision 1460, brief): the requester never reclaims late, and its waits are bounded
// (escrow stays recoverable). Here the node claims the job, its answer to the submission is lost
// and its enclave then hangs for good (SIGSTOP) while its host stays up. The RPC is honest (the
// requester's proxy forwards everything: freezeRpc is false). waitOutLostNode sees the job Claimed and
// follows the node's event stream, which the HOST keeps alive with a keep-alive every 15 s: the
// stream never idles out (idleMs 60 s) and never ends, so the SDK never returns to look at the
// chain. The claim lapses after 60 s, but the requester neither reclaims nor gives up: runJob waits
// for ever (a host can do the same on purpose to a job it claimed). The wait on the node's stream
// must be bounded by the claim's lapse on the requester's chain clock.

let lost: LostNodeNetwork;

beforeAll(async () => {
  lost = await startLostNodeNetwork();
}, 180_000);
afterAll(() => lost?.stop());

describe('a requester whose node claimed the job and then hung, its host still up', () => {
  it('reclaims or gives up within a bound after the claim lapsed, however long the host keeps the event stream alive', async () => {
    const { outcome, error, stopped, sent, jobId } = await lost.run({
      freezeRpc: false,
      nodeUnreachable: false,
    });
    expect({ outcome, stopped }).toMatchObject({ stopped: true });
    expect(outcome).not.toBe('still waiting');
    // The post, a reclaim perhaps, a nudge or two: not one transaction per poll.
    expect(sent).toBeLessThanOrEqual(4);
    // Back to the chain: the lapsed claim was reclaimed (escrow returned), the job named.
    expect(error?.name).toBe('NodeLostError');
    expect(error).toMatchObject({ jobId, reclaimed: true });
    const reader = createFirnClients(lost.net.anvil.rpcUrl, undefined, lost.net.deployment);
    expect((await getJob(reader, jobId!)).status).toBe(JobStatus.Reclaimed);
  }, 200_000);
});
