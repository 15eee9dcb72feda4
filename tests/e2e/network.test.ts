/**
 * The devnet end to end: real anvil, real contracts, nodes and verifiers as separate processes on
 * the simulated TEE. Covers what issue "network on a devnet" checks: nodes become Active through
 * verifier votes, a SIGKILLed node restarts with the same identity, and bad registrations
 * (tampered quote, other nonce, unbound keys, another operator's enclave, oversized evidence,
 * unlisted measurement, duplicate Enclave ID, low stake) are refused. It does not cover real TEE hardware.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DEV_POLICY } from '@firn/attestation';
import { createSimulatedPlatform, type SimulatedRoot } from '@firn/sim';
import { attestNode, devnetRoots } from '@firn/client';
import { createFirnClients, firnRegistryAbi, getNode, NodeStatus, registerNode } from '@firn/chain';
import {
  bytesToHex,
  computePlatformIdHash,
  type EvidenceBundle,
  type Hex,
  hexBytes,
  REFUSAL_CODES,
  TEE_TYPES,
} from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider } from '@firn/enclave';
import { measureEnclaveBundle } from '@firn/node';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Devnet, startDevnet } from '../../packages/cli/src/devnet/startDevnet.ts';

let net: Devnet;
const servers: Server[] = [];

beforeAll(async () => {
  net = await startDevnet({
    dir: mkdtempSync(join(tmpdir(), 'firn-devnet-')),
    nodes: 3,
    verifiers: 2,
    readyTimeout: 90,
    log: () => {},
  });
}, 150_000);

afterAll(async () => {
  for (const s of servers) s.close();
  await net?.stop();
});

const waitFor = async <T>(f: () => Promise<T | undefined>, ms: number): Promise<T> => {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 250));
  }
};

/**
 * An honest simulated enclave in this process, on a new simulated machine of the devnet's root,
 * started for `operator` (none when absent: its evidence then registers for nobody, decision 1830).
 */
async function makeEnclave(operator?: Hex) {
  const root = JSON.parse(
    readFileSync(join(net.dir, 'keys', 'simulated-root.json'), 'utf8'),
  ) as SimulatedRoot;
  const platform = await createSimulatedPlatform(root);
  const bundle = measureEnclaveBundle();
  const program = createEnclaveProgram({
    provider: createSimulatedProvider(platform, bundle.sha256),
    measurementRegisters: [bundle.sha256],
    platformId: Buffer.from(platform.platformId.slice(2), 'hex'),
  });
  const id = (await program.handle('init', operator === undefined ? {} : { operator })) as {
    enclaveId: Hex;
    enclaveAddress: Hex;
    kemPublicKey: Hex;
    measurement: Hex;
    platformId: Hex;
  };
  const attest = async (nonce: string) => (await program.handle('attest', { nonce })) as EvidenceBundle;
  return { id, attest };
}

/** A node endpoint that answers attestation requests through `answer`. */
async function fakeEndpoint(answer: (nonce: string) => Promise<string>): Promise<string> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', async () => {
      const { nonce } = JSON.parse(body) as { nonce: string };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(await answer(nonce));
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

let nextAccount = 7;
/** An anvil account no other test here registers with. */
const nextOperator = () => net.anvil.accounts[nextAccount++]!;
async function registerAndAwaitVerdict(
  id: { enclaveId: Hex; enclaveAddress: Hex; kemPublicKey: Hex; measurement: Hex; platformId: Hex },
  endpoint: string,
  platformIdHash = bytesToHex(computePlatformIdHash('simulated', hexBytes(id.platformId, 'platformId'))),
  acct = nextOperator(),
) {
  const c = createFirnClients(net.anvil.rpcUrl, acct.privateKey, net.deployment, { pollingIntervalMs: 50 });
  await registerNode(c, {
    enclaveId: id.enclaveId,
    teeType: TEE_TYPES.simulated,
    measurement: id.measurement,
    platformIdHash,
    enclaveAddress: id.enclaveAddress,
    kemPublicKey: id.kemPublicKey,
    endpoint,
    evidenceDigest: bytesToHex(randomBytes(32)),
    stake: parseEther('1'),
  });
  return waitFor(async () => {
    const n = await getNode(c, id.enclaveId);
    return n.status === NodeStatus.Pending ? undefined : n;
  }, 30_000);
}

async function refusalCodesOf(enclaveId: Hex): Promise<number[]> {
  const logs = await createFirnClients(net.anvil.rpcUrl, undefined, net.deployment).public.getContractEvents({
    address: net.deployment.registry,
    abi: firnRegistryAbi,
    eventName: 'NodeRefused',
    fromBlock: 0n,
    args: { enclaveId },
  });
  return logs.map((l) => Number((l.args as { reasonCode?: number }).reasonCode));
}

describe('firn devnet', () => {
  it('has 3 Active nodes and serves the node API', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    for (const n of net.state.nodes)
      expect((await getNode(reader, n.enclaveId)).status).toBe(NodeStatus.Active);
    const url = net.state.nodes[0]!.url;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    // The node follows its on-chain status by polling; give it a moment to see Active.
    const info = await waitFor(async () => {
      const r = (await (await fetch(`${url}/v1/node`)).json()) as { enclaveId: string; status: string };
      return r.status === 'active' ? r : undefined;
    }, 10_000);
    expect(info.enclaveId).toBe(net.state.nodes[0]!.enclaveId);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^firn_enclave_up 1$/m);
    const ev = await fetch(`${url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: bytesToHex(randomBytes(32)) }),
    });
    expect(((await ev.json()) as EvidenceBundle).teeType).toBe('simulated');
    const bad = await fetch(`${url}/v1/attestation`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: '0x1234' }),
    });
    expect(bad.status).toBe(400);
    const huge = await fetch(`${url}/v1/attestation`, { method: 'POST', body: 'x'.repeat(10_000) });
    expect(huge.status).toBe(413);
  });

  it('a requester attests every node, the GPU one too, with the devnet roots pinned', async () => {
    const reader = createFirnClients(net.anvil.rpcUrl, undefined, net.deployment);
    const now = Math.floor(Date.now() / 1000);
    const pinned = devnetRoots(net.state);
    for (const n of net.state.nodes) {
      const a = await attestNode(reader, { policy: DEV_POLICY, now, node: n.url, ...pinned });
      expect(a.enclaveId).toBe(n.enclaveId);
    }
    // Without the simulated GPU root pinned, the composite node's GPU evidence does not verify.
    const gpuNode = net.state.nodes[net.state.nodes.length - 1]!;
    await expect(
      attestNode(reader, { policy: DEV_POLICY, now, node: gpuNode.url, roots: pinned.roots }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/E_EVIDENCE_CHAIN/) });
  });

  it('a node killed with SIGKILL and started again keeps its Enclave ID and address and is Active', async () => {
    const n = net.nodes[0]!;
    const before = net.state.nodes[0]!;
    const exited = new Promise((r) => n.child.once('exit', r));
    process.kill(n.child.pid!, 'SIGKILL');
    await exited;
    // The orphaned enclave process notices its closed stdin and exits on its own.
    const [cmd, ...args] = before.restart;
    const child = spawn(cmd!, args, { stdio: 'ignore' });
    try {
      const info = await waitFor(async () => {
        try {
          const r = (await (await fetch(`${before.url}/v1/node`)).json()) as {
            enclaveId: string;
            enclaveAddress: string;
            status: string;
          };
          return r.status === 'active' ? r : undefined;
        } catch {
          return undefined;
        }
      }, 60_000);
      expect(info.enclaveId).toBe(before.enclaveId);
      expect(info.enclaveAddress.toLowerCase()).toBe(before.enclaveAddress.toLowerCase());
      const onChain = await getNode(
        createFirnClients(net.anvil.rpcUrl, undefined, net.deployment),
        before.enclaveId,
      );
      expect(onChain.status).toBe(NodeStatus.Active);
      expect(onChain.enclaveAddress.toLowerCase()).toBe(before.enclaveAddress.toLowerCase());
    } finally {
      child.kill('SIGTERM');
    }
  }, 90_000);

  it('a registration whose quote was tampered with never becomes Active', async () => {
    const e = await makeEnclave();
    const endpoint = await fakeEndpoint(async (nonce) => {
      const b = await e.attest(nonce);
      const q = Buffer.from(b.quote.slice(2), 'hex');
      q[60]! ^= 0x01; // inside the signed measurement
      return JSON.stringify({ ...b, quote: `0x${q.toString('hex')}` });
    });
    const n = await registerAndAwaitVerdict(e.id, endpoint);
    expect(n.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e.id.enclaveId)).toContain(REFUSAL_CODES.E_EVIDENCE_SIGNATURE);
  }, 60_000);

  it('refuses evidence for another nonce', async () => {
    const e = await makeEnclave();
    const stale = JSON.stringify(await e.attest(bytesToHex(randomBytes(32))));
    const n = await registerAndAwaitVerdict(e.id, await fakeEndpoint(async () => stale));
    expect(n.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e.id.enclaveId)).toContain(REFUSAL_CODES.E_EVIDENCE_NONCE);
  }, 60_000);

  it('refuses report data that does not bind the registered keys', async () => {
    const e = await makeEnclave();
    const other = await makeEnclave();
    // Registers e's identity but serves a genuine quote binding another enclave's keys.
    const endpoint = await fakeEndpoint(async (nonce) => JSON.stringify(await other.attest(nonce)));
    const n = await registerAndAwaitVerdict(e.id, endpoint);
    expect(n.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e.id.enclaveId)).toContain(REFUSAL_CODES.E_IDENTITY_MISMATCH);
  }, 60_000);

  it('refuses a registration whose platform id hash is not the attested platform (one machine, one share)', async () => {
    const operator = nextOperator();
    const e = await makeEnclave(operator.address);
    const endpoint = await fakeEndpoint(async (nonce) => JSON.stringify(await e.attest(nonce)));
    // Genuine evidence, but the operator claims another machine to earn a second capacity share.
    const n = await registerAndAwaitVerdict(e.id, endpoint, bytesToHex(randomBytes(32)), operator);
    expect(n.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e.id.enclaveId)).toContain(REFUSAL_CODES.E_IDENTITY_MISMATCH);
  }, 60_000);

  it('refuses a malformed or oversized evidence bundle', async () => {
    const e = await makeEnclave();
    const n = await registerAndAwaitVerdict(
      e.id,
      await fakeEndpoint(async () => JSON.stringify({ version: 1, junk: 'x'.repeat(2 << 20) })),
    );
    expect(n.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e.id.enclaveId)).toContain(REFUSAL_CODES.E_TOO_LARGE);
    const e2 = await makeEnclave();
    const n2 = await registerAndAwaitVerdict(
      e2.id,
      await fakeEndpoint(async () => '{"version":1,"teeType":"simulated"}'),
    );
    expect(n2.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e2.id.enclaveId)).toContain(REFUSAL_CODES.E_EVIDENCE_MALFORMED);
  }, 90_000);

  it("refuses another operator's enclave registered through a relay to it (decision 1830)", async () => {
    const a = nextOperator();
    const e = await makeEnclave(a.address);
    // B registers A's enclave at an endpoint that relays each request to A's enclave.
    const relay = await fakeEndpoint(async (nonce) => JSON.stringify(await e.attest(nonce)));
    const n = await registerAndAwaitVerdict(e.id, relay);
    expect(n.status).toBe(NodeStatus.Rejected);
    expect(await refusalCodesOf(e.id.enclaveId)).toContain(REFUSAL_CODES.E_EVIDENCE_OPERATOR);
    // A's own registration of it, after B's was refused, is approved.
    const own = await registerAndAwaitVerdict(e.id, relay, undefined, a);
    expect(own.status).toBe(NodeStatus.Active);
    expect(own.operator.toLowerCase()).toBe(a.address.toLowerCase());
  }, 90_000);

  it('refuses on chain: an unlisted measurement, a second registration of an active Enclave ID, a stake under the minimum', async () => {
    const acct = net.anvil.accounts[nextAccount++]!;
    const c = createFirnClients(net.anvil.rpcUrl, acct.privateKey, net.deployment, { pollingIntervalMs: 50 });
    const base = {
      enclaveId: bytesToHex(randomBytes(32)),
      teeType: TEE_TYPES.simulated,
      measurement: bytesToHex(randomBytes(32)),
      platformIdHash: bytesToHex(randomBytes(32)),
      enclaveAddress: bytesToHex(randomBytes(20)),
      kemPublicKey: bytesToHex(randomBytes(32)),
      endpoint: 'http://127.0.0.1:1',
      evidenceDigest: bytesToHex(randomBytes(32)),
      stake: parseEther('1'),
    };
    await expect(registerNode(c, base)).rejects.toMatchObject({
      code: 'E_CHAIN_REVERTED',
      message: expect.stringMatching(/MeasurementNotAllowed/),
    });
    const active = net.state.nodes[1]!;
    await expect(
      registerNode(c, { ...base, enclaveId: active.enclaveId, measurement: net.state.measurement }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/EnclaveIdActive/) });
    await expect(
      registerNode(c, { ...base, measurement: net.state.measurement, stake: parseEther('0.5') }),
    ).rejects.toMatchObject({ message: expect.stringMatching(/StakeTooLow/) });
  });
});
