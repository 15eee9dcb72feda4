/**
 * A verifier's vote counts only for the round whose keys it checked (decision 1831).
 *
 * The node registers with its enclave's keys and an evidence digest it picks. When the verifier
 * asks for evidence, the node holds its answer, withdraws its Pending registration (requestExit
 * ends it at once) and registers the same Enclave ID again with the same digest but an enclave
 * address and KEM key it holds outright; then it answers with the enclave's genuine evidence for
 * the old keys. Before, the verifier's approve(enclaveId, digest) counted for the new round and the
 * node became Active with the operator's key. Now the vote names round 1, reverts RoundMismatch
 * and counts for nothing; the daemon moves on, and round 2 is judged on its own evidence.
 */
import {
  firnRegistryAbi,
  getNode,
  getRegistrationEvents,
  NodeStatus,
  registerNode,
  requestExit,
} from '@firn/chain';
import { type Hex, REFUSAL_CODES } from '@firn/core';
import { keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attestingEndpoint,
  ETH,
  genuineEnclave,
  readJson,
  registrationOf,
  serveEndpoint,
  startVoteChain,
  type VoteChain,
  voteChainVerifier,
} from '../helpers/verifierVoteChain.ts';

let chain: VoteChain;
/** The enclave code the chain allow-lists (each test runs it on a platform of its own). */
let code: Uint8Array;
const servers: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  const first = await genuineEnclave();
  code = first.sha;
  chain = await startVoteChain(first.measurement);
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.close();
  await chain?.anvil.stop();
});

describe('a vote is bound to the round it judged', () => {
  it('an approval of round 1 never activates round 2 (the same Enclave ID and digest, the operator’s keys)', async () => {
    const enclave = await genuineEnclave(code);
    const c = chain;
    const digest = keccak256(toHex('operator-chosen digest'));
    const attacker = privateKeyToAccount(c.attackerKey).address;
    let swapped = false;
    const node = await serveEndpoint(async (req, res) => {
      const { nonce } = (await readJson(req)) as { nonce: Hex };
      if (!swapped) {
        swapped = true;
        // While the verifier waits: withdraw round 1 and register round 2 with keys of our own.
        await requestExit(c.operator, enclave.enclaveId);
        await registerNode(c.operator, {
          ...registrationOf(enclave, node.url, digest),
          enclaveAddress: attacker,
          kemPublicKey: keccak256(toHex('attacker kem key')),
        });
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(await enclave.attest(nonce)));
    });
    servers.push(node);
    await registerNode(c.operator, registrationOf(enclave, node.url, digest));
    const head = () => c.gov.public.getBlockNumber({ cacheTime: 0 });
    const [round1] = await getRegistrationEvents(c.gov, c.deployment.deployBlock, await head());
    expect(round1!.round).toBe(1);
    const { daemon, logs } = voteChainVerifier(c, [enclave.rootDer]);
    const me = privateKeyToAccount(c.verifierKey).address;
    const hasVoted = (round: number) =>
      c.gov.public.readContract({
        address: c.deployment.registry,
        abi: firnRegistryAbi,
        functionName: 'hasVoted',
        args: [enclave.enclaveId, round, me],
      });

    await daemon.onRegistration(round1!);
    expect(swapped).toBe(true);
    const after = await getNode(c.gov, enclave.enclaveId);
    expect(after.round).toBe(2);
    expect(after.enclaveAddress).toBe(attacker);
    // The approval named round 1: it reverted (RoundMismatch) and counted nowhere.
    expect(NodeStatus[after.status], logs.join('\n')).toBe('Pending');
    expect(after.approvalStake).toBe(0n);
    expect(await hasVoted(1)).toBe(false);
    expect(await hasVoted(2)).toBe(false);
    expect(daemon.stats).toMatchObject({ approved: 0, refused: 0 });
    expect(logs.join('\n')).toContain('the round judged was replaced by a new one');
    expect(logs.filter((l) => l.startsWith('error'))).toEqual([]);

    // Round 2 is judged on its own: the enclave's evidence does not bind the operator's key.
    const events = await getRegistrationEvents(c.gov, c.deployment.deployBlock, await head());
    const round2 = events.find((e) => e.round === 2);
    expect(round2).toBeDefined();
    await daemon.onRegistration(round2!);
    expect(await hasVoted(2)).toBe(true);
    const judged = await getNode(c.gov, enclave.enclaveId);
    expect(NodeStatus[judged.status], logs.join('\n')).toBe('Rejected');
    const refusals = await c.gov.public.getContractEvents({
      address: c.deployment.registry,
      abi: firnRegistryAbi,
      eventName: 'NodeRefused',
      fromBlock: c.deployment.deployBlock,
      strict: true,
    });
    const mine = refusals.filter((l) => l.args.enclaveId.toLowerCase() === enclave.enclaveId.toLowerCase());
    expect(mine.map((l) => [l.args.round, l.args.reasonCode])).toEqual([
      [2, REFUSAL_CODES.E_IDENTITY_MISMATCH],
    ]);
  }, 120_000);

  it('an honest registration is approved in the round the verifier read', async () => {
    const honest = await genuineEnclave(code);
    const c = chain;
    const node = await attestingEndpoint(honest);
    servers.push(node);
    const { daemon, logs } = voteChainVerifier(c, [honest.rootDer]);
    await registerNode(c.operator, registrationOf(honest, node.url, keccak256(toHex('honest'))));
    const events = await getRegistrationEvents(
      c.gov,
      c.deployment.deployBlock,
      await c.gov.public.getBlockNumber({ cacheTime: 0 }),
    );
    const mine = events.find((e) => e.enclaveId.toLowerCase() === honest.enclaveId.toLowerCase());
    await daemon.onRegistration(mine!);
    const n = await getNode(c.gov, honest.enclaveId);
    expect(NodeStatus[n.status], logs.join('\n')).toBe('Active');
    expect(n.enclaveAddress.toLowerCase()).toBe(honest.enclaveAddress.toLowerCase());
    expect(n.stake).toBe(ETH);
  }, 120_000);
});
