/**
 * Rounds are judged independently (decision 1831): registrations whose endpoints accept the
 * attestation request and never answer delay no other registration's vote.
 *
 * Before, the watcher awaited each vote in turn and so did the sweep; one vote on a silent node
 * took fetchAttempts (5) x the 10 s evidence timeout plus its quick retries (about 55 s). An
 * operator that front-ran an honest registration with K silent ones (a fee each, the stake back
 * from Pending at once) held it about K x 55 s at every verifier. Now each round is judged in a
 * slot of its own (8 by default), a round waiting between tries holds none, and a throwing round
 * ends no sweep.
 */
import { fetchEvidenceOverHttp } from '@firn/attestation';
import { getNode, NodeStatus, registerNode } from '@firn/chain';
import { keccak256, toHex } from 'viem';
import { afterAll, describe, expect, it } from 'vitest';
import {
  attestingEndpoint,
  genuineEnclave,
  registrationOf,
  serveEndpoint,
  startVoteChain,
  type VoteChain,
  voteChainVerifier,
} from '../helpers/verifierVoteChain.ts';

let chain: VoteChain | undefined;
/** The enclave code the chain allow-lists (each registration runs it on a platform of its own). */
let code: Uint8Array;
const servers: { close(): Promise<void> }[] = [];
const stops: (() => void)[] = [];
afterAll(async () => {
  for (const stop of stops) stop();
  for (const s of servers) await s.close();
  await chain?.anvil.stop();
});

describe('silent registrations stall no other vote', () => {
  it('an honest registration is approved within 20 s although 3 silent registrations came first', async () => {
    const honest = await genuineEnclave();
    code = honest.sha;
    chain = await startVoteChain(honest.measurement);
    const c = chain;
    const silent = await serveEndpoint(() => {
      /* accepts, never answers */
    });
    servers.push(silent);
    for (let i = 0; i < 3; i++) {
      const sybil = await genuineEnclave(honest.sha);
      await registerNode(c.operator, registrationOf(sybil, silent.url, keccak256(toHex(`silent ${i}`))));
    }
    const node = await attestingEndpoint(honest);
    servers.push(node);
    await registerNode(c.operator, registrationOf(honest, node.url, keccak256(toHex('honest'))));
    // Production defaults: 5 fetch attempts, the 10 s evidence timeout, a 5 s sweep, 8 slots.
    const { daemon, logs } = voteChainVerifier(c, [honest.rootDer], { fetchAttempts: 5 });
    daemon.start();
    const stop = () => daemon.stop();
    stops.push(stop);
    const t0 = Date.now();
    let status = NodeStatus.Pending;
    while (Date.now() - t0 < 20_000) {
      status = (await getNode(c.gov, honest.enclaveId)).status;
      if (status !== NodeStatus.Pending) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(NodeStatus[status], `after ${Math.round((Date.now() - t0) / 1000)} s\n${logs.join('\n')}`).toBe(
      'Active',
    );
    // The silent rounds stay open: no evidence is no fact about an enclave (decision 1742).
    expect(daemon.stats.refused).toBe(0);
    stop();
  }, 60_000);

  it('a sweep whose one round throws still votes in the others', async () => {
    const c = chain as VoteChain;
    const broken = await genuineEnclave(code);
    const honest = await genuineEnclave(code);
    const node = await attestingEndpoint(honest);
    servers.push(node);
    // The broken round first: the sweep reaches it before the honest one.
    await registerNode(c.operator, registrationOf(broken, node.url, keccak256(toHex('broken'))));
    await registerNode(c.operator, registrationOf(honest, node.url, keccak256(toHex('honest 2'))));
    const { daemon, logs } = voteChainVerifier(c, [honest.rootDer], {
      // The silent rounds of the test above are swept too: 1 s each, side by side.
      fetchEvidence: (endpoint, nonce) =>
        fetchEvidenceOverHttp(endpoint, nonce, 1_000, { allowPrivateEndpoints: true }),
    });
    const judge = daemon.onRegistration.bind(daemon);
    daemon.onRegistration = async (e) => {
      if (e.enclaveId.toLowerCase() === broken.enclaveId.toLowerCase()) throw new Error('judging failed');
      return judge(e);
    };
    await daemon.sweep();
    expect(NodeStatus[(await getNode(c.gov, honest.enclaveId)).status], logs.join('\n')).toBe('Active');
    expect(NodeStatus[(await getNode(c.gov, broken.enclaveId)).status]).toBe('Pending');
    expect(logs.join('\n')).toMatch(/vote sweep failed for a round.*judging failed/);
  }, 60_000);
});
