/**
 * Registration hijack by relay (decisions 0800 "What remains open", 1830). Operator B registers
 * operator A's Enclave ID, enclave address and KEM key with an endpoint of its own that relays
 * every attestation request to A's node. A's enclave answers each verifier's fresh nonce with
 * genuine evidence; before 1830 the verifiers approved, B became the on-chain operator of A's
 * hardware (its liveness rewards, its payouts) and A's own registration was refused
 * (EnclaveIdActive). Now A's enclave binds the operator it was started for into every quote, and
 * the verifiers refuse B's registration (E_EVIDENCE_OPERATOR); A then registers and is Active.
 * A requester attesting a node whose registry record names another operator than the one its
 * evidence binds refuses it too (a record made before 1830, written here into anvil's storage).
 * Real anvil, contracts, two verifier daemons and a node daemon on the simulated TEE
 * (startTestNetwork); the attack runs after A's node started, before it registers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  createFirnClients,
  firnRegistryAbi,
  getNode,
  NodeStatus,
  registerNode,
  rotateKeys,
  updateEndpoint,
} from '@firn/chain';
import { AgreeingChainView, assertStillEligible, attestNode } from '@firn/client';
import {
  bytesToHex,
  computePlatformIdHash,
  evidenceBundleDigest,
  type EvidenceBundle,
  type Hex,
  hexBytes,
  REFUSAL_CODES,
  TEE_TYPES,
} from '@firn/core';
import { createLogger, NodeDaemon } from '@firn/node';
import { encodeAbiParameters, keccak256, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNetwork, type TestNetwork } from '../e2e/network.ts';

let net: TestNetwork;
let relay: Server | undefined;
const extraNodes: NodeDaemon[] = [];
const extraDirs: string[] = [];
/** What B's registration came to, read once the verifiers decided (before A registered). */
let hijack: { status: NodeStatus; operator: Hex; reasonCodes: number[]; relayed: number };

/** An endpoint of B's that relays POST /v1/attestation to A's node, byte for byte. */
async function startRelay(target: string): Promise<{ url: string; relayed: () => number }> {
  let relayed = 0;
  relay = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const up = await fetch(new URL(req.url ?? '/', target), {
          method: req.method ?? 'GET',
          headers: { 'content-type': 'application/json' },
          ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
        });
        relayed++;
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await up.arrayBuffer()));
      } catch {
        res.writeHead(502).end();
      }
    });
  });
  await new Promise<void>((r) => relay!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`, relayed: () => relayed };
}

/** B registers A's identity behind its relay, and waits for the verifiers' verdict. */
async function hijackRegistration(t: Pick<TestNetwork, 'anvil' | 'deployment'>, victim: NodeDaemon) {
  const b = t.anvil.accounts[5]!;
  const asB = createFirnClients(t.anvil.rpcUrl, b.privateKey, t.deployment, { pollingIntervalMs: 50 });
  const id = victim.identity!;
  const r = await startRelay(victim.url);
  // B can read everything it registers from A's public API, evidence included.
  const seen = (await (
    await fetch(`${r.url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: `0x${'07'.repeat(32)}` }),
    })
  ).json()) as EvidenceBundle;
  await registerNode(asB, {
    enclaveId: id.enclaveId,
    teeType: TEE_TYPES.simulated,
    measurement: id.measurement,
    platformIdHash: bytesToHex(computePlatformIdHash('simulated', hexBytes(id.platformId, 'platformId'))),
    enclaveAddress: id.enclaveAddress,
    kemPublicKey: id.kemPublicKey,
    endpoint: r.url,
    evidenceDigest: bytesToHex(evidenceBundleDigest(seen)),
    stake: parseEther('1'),
  });
  const until = Date.now() + 30_000;
  let n = await getNode(asB, id.enclaveId);
  while (n.status === NodeStatus.Pending && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 100));
    n = await getNode(asB, id.enclaveId);
  }
  const refused = await asB.public.getContractEvents({
    address: t.deployment.registry,
    abi: firnRegistryAbi,
    eventName: 'NodeRefused',
    fromBlock: 0n,
    args: { enclaveId: id.enclaveId },
  });
  return {
    status: n.status,
    operator: n.operator.toLowerCase() as Hex,
    reasonCodes: refused.map((l) => Number((l.args as { reasonCode?: number }).reasonCode)),
    relayed: r.relayed(),
  };
}

beforeAll(async () => {
  net = await startTestNetwork({
    afterStep: async (step, started) => {
      if (step !== 'node') return;
      const node = started.node!;
      hijack = await hijackRegistration(
        { anvil: started.anvil, deployment: node.opts.chain!.deployment },
        node,
      );
    },
  });
}, 180_000);

afterAll(async () => {
  relay?.close();
  relay?.closeAllConnections();
  for (const n of extraNodes) await n.stop().catch(() => undefined);
  await net?.stop();
  // The network's own temp dirs (its stop leaves them): the node's data, the bundle, the platform.
  if (net !== undefined) {
    const { dataDir, bundlePath, enclaveEnv } = net.node.opts;
    extraDirs.push(dataDir, bundlePath, enclaveEnv.FIRN_SIM_PLATFORM!);
  }
  for (const d of extraDirs) {
    // The folder made in the temp dir that holds `d` (the bundle lies a few levels down in its own).
    let top = d;
    while (dirname(top) !== top && dirname(top) !== tmpdir()) top = dirname(top);
    if (dirname(top) === tmpdir()) rmSync(top, { recursive: true, force: true });
  }
});

describe('attack: registering another operator’s enclave through a relay', () => {
  it("B's registration of A's enclave is refused by the verifiers with E_EVIDENCE_OPERATOR", () => {
    expect(hijack.relayed, 'the verifiers fetched evidence through the relay').toBeGreaterThan(1);
    expect(hijack.operator).toBe(net.anvil.accounts[5]!.address.toLowerCase());
    expect(hijack.status).toBe(NodeStatus.Rejected);
    expect(hijack.reasonCodes.length).toBeGreaterThan(0);
    expect(new Set(hijack.reasonCodes)).toEqual(new Set([REFUSAL_CODES.E_EVIDENCE_OPERATOR]));
  });

  it("A's own registration afterwards is Active, with A as its operator, and its evidence names A", async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const n = await getNode(reader, net.node.identity!.enclaveId);
    expect(n.status).toBe(NodeStatus.Active);
    expect(n.operator.toLowerCase()).toBe(net.operator.address.toLowerCase());
    expect(n.endpoint).toBe(net.node.url);
    expect(net.node.identity!.operator).toBe(net.operator.address.toLowerCase());
    const info = (await (await fetch(`${net.node.url}/v1/node`)).json()) as { operator?: string };
    expect(info.operator).toBe(net.operator.address.toLowerCase());
  });

  it('a requester refuses a node whose registry record names another operator than its evidence binds', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const enclaveId = net.node.identity!.enclaveId;
    const opts = { policy: net.policy, roots: net.roots, enclaveId };
    const now = () => Math.floor(Date.now() / 1000);
    const attested = await attestNode(reader, { ...opts, now: now() });
    expect(attested.operator).toBe(net.operator.address.toLowerCase());
    // A record made before decision 1830 (a hijack the verifiers then approved): rewrite the
    // registry's operator of A's Enclave ID to B in anvil's storage.
    const b = net.anvil.accounts[5]!.address.toLowerCase() as Hex;
    await rewriteOperator(enclaveId, net.operator.address.toLowerCase() as Hex, b);
    expect((await getNode(reader, enclaveId)).operator.toLowerCase()).toBe(b);
    const refused = await attestNode(reader, { ...opts, now: now() }).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'E_POLICY_REJECTED',
      message: expect.stringMatching(
        /E_EVIDENCE_OPERATOR.*binds operator 0x[0-9a-f]{40}, not the registration's operator 0x/,
      ),
    });
    expect((refused as Error).message).toContain(b);
    // A node attested before its record changed is refused at the last check before grants leave.
    await expect(
      assertStillEligible(new AgreeingChainView([reader]), attested, net.policy),
    ).rejects.toMatchObject({
      code: 'E_POLICY_REJECTED',
      message: expect.stringContaining(`registered by operator ${b}`),
    });
    await rewriteOperator(enclaveId, b, net.operator.address.toLowerCase() as Hex);
  });
});

describe('attack: a key rotation to an enclave started for another operator', () => {
  // A's machine changes hands: B runs it now (same platform, same image, so the same Enclave ID,
  // with new keys), and A, still the registered operator, rotates its registration to B's keys and
  // points it at B's node to keep the record (and its rewards) for itself. Refused; a rotation to
  // an enclave started for A is approved.
  /** A second enclave on A's machine, started serve-only for `operator`. */
  async function sameMachineNode(operator: Hex): Promise<NodeDaemon> {
    const dataDir = mkdtempSync(join(tmpdir(), 'firn-hijack-node-'));
    extraDirs.push(dataDir);
    const node = new NodeDaemon({
      dataDir,
      bundlePath: net.node.opts.bundlePath,
      enclaveEnv: net.node.opts.enclaveEnv,
      logger: createLogger({ component: 'node' }, { write: () => undefined }),
      operator,
    });
    extraNodes.push(node);
    await node.start();
    return node;
  }

  /** A rotates its registration to `to`'s keys at `to`'s endpoint; resolves once the round ended. */
  async function rotateTo(to: NodeDaemon) {
    const asA = createFirnClients(net.anvil.rpcUrl, net.operator.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    const enclaveId = net.node.identity!.enclaveId;
    expect(to.identity!.enclaveId).toBe(enclaveId);
    await updateEndpoint(asA, enclaveId, to.url);
    await rotateKeys(asA, {
      enclaveId,
      newEnclaveAddress: to.identity!.enclaveAddress,
      newKemPublicKey: to.identity!.kemPublicKey,
      newEvidenceDigest: bytesToHex(evidenceBundleDigest(await to.attest(new Uint8Array(32).fill(9)))),
    });
    const round = (await getNode(asA, enclaveId)).round;
    const until = Date.now() + 30_000;
    let n = await getNode(asA, enclaveId);
    while (n.rotationPending && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      n = await getNode(asA, enclaveId);
    }
    const refused = await asA.public.getContractEvents({
      address: net.deployment.registry,
      abi: firnRegistryAbi,
      eventName: 'NodeRefused',
      fromBlock: 0n,
      args: { enclaveId },
    });
    const codes = refused
      .filter((l) => Number((l.args as { round?: number }).round) === round)
      .map((l) => Number((l.args as { reasonCode?: number }).reasonCode));
    return { node: n, codes };
  }

  it('to keys whose evidence binds B: refused with E_EVIDENCE_OPERATOR, the old keys stay', async () => {
    const before = await getNode(
      createFirnClients(net.anvil.rpcUrl, undefined, net.deployment),
      net.node.identity!.enclaveId,
    );
    const bs = await sameMachineNode(net.anvil.accounts[5]!.address);
    expect(bs.identity!.operator).toBe(net.anvil.accounts[5]!.address.toLowerCase());
    const r = await rotateTo(bs);
    expect(r.node.rotationPending).toBe(false);
    expect(r.node.status).toBe(NodeStatus.Active);
    expect(r.node.enclaveAddress.toLowerCase()).toBe(before.enclaveAddress.toLowerCase());
    expect(r.codes.length).toBeGreaterThan(0);
    expect(new Set(r.codes)).toEqual(new Set([REFUSAL_CODES.E_EVIDENCE_OPERATOR]));
  });

  it("to keys of an enclave started for A: approved (the operator's own rotation still works)", async () => {
    const mine = await sameMachineNode(net.operator.address);
    const r = await rotateTo(mine);
    expect(r.codes).toEqual([]);
    expect(r.node.status).toBe(NodeStatus.Active);
    expect(r.node.enclaveAddress.toLowerCase()).toBe(mine.identity!.enclaveAddress.toLowerCase());
  });
});

/**
 * Replace the operator (the low 20 bytes of the first slot of the registry's Node record) of
 * `enclaveId` from `from` to `to` with anvil_setStorageAt. The mapping's slot is found by reading:
 * the one whose record's first slot ends in `from`.
 */
async function rewriteOperator(enclaveId: Hex, from: Hex, to: Hex): Promise<void> {
  const rpc = async (method: string, params: unknown[]) => {
    const r = await fetch(net.anvil.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    });
    return ((await r.json()) as { result: string }).result;
  };
  for (let i = 0n; i < 64n; i++) {
    const slot = keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint256' }], [enclaveId, i]));
    const word = await rpc('eth_getStorageAt', [net.deployment.registry, slot, 'latest']);
    if (!word.toLowerCase().endsWith(from.slice(2))) continue;
    await rpc('anvil_setStorageAt', [net.deployment.registry, slot, `${word.slice(0, -40)}${to.slice(2)}`]);
    await rpc('evm_mine', []);
    return;
  }
  throw new Error(`no Node record of ${enclaveId} names ${from}`);
}
