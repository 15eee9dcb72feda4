import {
  approveNode,
  createFirnClients,
  type FirnClients,
  getIssuedChallenges,
  getNode,
  NodeStatus,
} from '@firn/chain';
import { keccak256, toHex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POLL,
  registerPendingNode,
  startVerifierChain,
  type VerifierChain,
} from '../test/pendingNodeChain.ts';
import { LivenessChallenger } from './livenessChallenger.ts';

// stop() promises that a pass in flight sends no further challenge. A challenge sent after it is
// one its owner does not expect: the test networks stop the daemons' challengers once their node is
// Active, and a challenge the node was never going to answer is a missed epoch (three of them and
// the pool takes none: NodeUnresponsive, the networkLiveness failure of decision 1834).

let chain: VerifierChain;
const measurement = keccak256(toHex('challenger-stop-build'));

beforeAll(async () => {
  chain = await startVerifierChain(measurement);
}, 120_000);
afterAll(() => chain?.anvil.stop());

describe('LivenessChallenger.stop', () => {
  it('a pass stopped while it reads whether the node is unresponsive sends no challenge', async () => {
    const { anvil, deployment } = chain;
    const { verifierKey, enclaveId } = await registerPendingNode(chain, measurement, 'challenger-stop-node');
    const verifier = createFirnClients(anvil.rpcUrl, verifierKey, deployment, POLL);
    // The only verifier: its approval activates the node.
    await approveNode(verifier, { enclaveId, round: 1, evidenceDigest: keccak256(toHex('evidence')) });
    expect((await getNode(verifier, enclaveId)).status).toBe(NodeStatus.Active);

    let challenger: LivenessChallenger | undefined;
    // The last read before the write: the owner stops the challenger while it is in flight.
    const readContract = ((args: { functionName: string }) => {
      if (args.functionName === 'isUnresponsive') challenger?.stop();
      return verifier.public.readContract(args as never);
    }) as FirnClients['public']['readContract'];
    const stoppedMidPass: FirnClients = {
      ...verifier,
      public: new Proxy(verifier.public, {
        get: (t, k, r) => (k === 'readContract' ? readContract : Reflect.get(t, k, r)),
      }),
    };
    challenger = new LivenessChallenger(stoppedMidPass);
    await challenger.poll();
    expect(challenger.stats.issued).toBe(0);
    const head = await verifier.public.getBlockNumber({ cacheTime: 0 });
    expect(await getIssuedChallenges(verifier, { fromBlock: 0n, toBlock: head, enclaveId })).toEqual([]);

    // Not stopped, the same pass challenges the node.
    const running = new LivenessChallenger(verifier);
    await running.poll();
    expect(running.stats.issued).toBe(1);
  }, 60_000);
});
