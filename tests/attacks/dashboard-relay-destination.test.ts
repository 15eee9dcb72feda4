import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AnvilInstance,
  approveNode,
  createFirnClients,
  type FirnDeployment,
  getNode,
  joinVerifierSet,
  NodeStatus,
  refuseNode,
  registerNode,
} from '@firn/chain';
import { bytesToHex, type Hex, REFUSAL_CODES, TEE_TYPES } from '@firn/core';
import { type DashboardServer, serveDashboard } from '@firn/dashboard';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_MEASUREMENT, startDashboardChain, stopDashboardChain } from '../helpers/dashboardChain.ts';

// The dashboard's node relay (decision 1834): an operator registers a node whose endpoint names an
// address only the dashboard's host can reach (here a server on 127.0.0.1 that counts every
// connection), pays one fee and is refused; before 1834 any visitor could then read that internal
// service's GET answers through /node/{id}/..., up to 64 MiB inflated and held whole.

const listen = (s: Server) =>
  new Promise<number>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)),
  );
const closeServer = (s: Server) =>
  new Promise<void>((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });

describe('attack: the dashboard relay as a way into its host’s network', () => {
  let anvil: AnvilInstance;
  let deployment: FirnDeployment;
  let dash: DashboardServer;
  let internal: Server;
  let port = 0;
  let connections = 0;
  const held: ServerResponse[] = [];
  const dashboards: DashboardServer[] = [];

  beforeAll(async () => {
    ({ anvil, deployment, dash } = await startDashboardChain());
    // Account 3 is the deployment's one verifier: it joins with the whole stake and votes alone.
    await joinVerifierSet(verifier(), parseEther('1'));
    internal = createServer((req, res) => {
      if (req.url?.endsWith('/healthz')) return void res.end('{"ok":true}');
      if (req.url?.endsWith('/v1/node')) {
        // 2 MiB without a content-length: only the streamed count can stop it.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < 32; i++) res.write(Buffer.alloc(64 * 1024, 1));
        return void res.end();
      }
      if (req.url?.includes('/v1/artifacts/')) {
        res.writeHead(200, { 'content-length': String(4 << 20) });
        return void res.end(Buffer.alloc(4 << 20));
      }
      // /v1/jobs/...: answered only when the test says so (a relay held open).
      held.push(res);
    });
    internal.on('connection', () => connections++);
    port = await listen(internal);
  }, 120_000);

  afterAll(async () => {
    for (const d of dashboards) await d.close();
    if (internal) await closeServer(internal);
    await stopDashboardChain({ anvil, dash });
  });

  async function register(label: string): Promise<{ enclaveId: Hex; round: number }> {
    const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[4]!.privateKey, deployment, {
      pollingIntervalMs: 50,
    });
    const enclaveId = bytesToHex(randomBytes(32)) as Hex;
    await registerNode(operator, {
      enclaveId,
      teeType: TEE_TYPES.simulated,
      measurement: DASHBOARD_MEASUREMENT,
      platformIdHash: bytesToHex(randomBytes(32)) as Hex,
      enclaveAddress: bytesToHex(randomBytes(20)) as Hex,
      kemPublicKey: bytesToHex(randomBytes(32)) as Hex,
      endpoint: `http://127.0.0.1:${port}/${label}`,
      evidenceDigest: `0x${'d7'.repeat(32)}`,
      stake: parseEther('1'),
    });
    const n = await getNode(operator, enclaveId);
    return { enclaveId, round: n.round };
  }

  const verifier = () =>
    createFirnClients(anvil.rpcUrl, anvil.accounts[3]!.privateKey, deployment, { pollingIntervalMs: 50 });
  const evidenceDigest = `0x${'d7'.repeat(32)}` as const;

  it('a Pending or Rejected node is not relayed to, even where private endpoints are allowed; no connection is made', async () => {
    const open = await serveDashboard({ rpcUrl: anvil.rpcUrl, deployment, allowPrivateEndpoints: true });
    dashboards.push(open);
    const { enclaveId, round } = await register('refused');
    const before = connections;
    const pending = await fetch(new URL(`node/${enclaveId}/healthz`, open.url));
    expect(pending.status).toBe(403);
    await refuseNode(verifier(), {
      enclaveId,
      round,
      evidenceDigest,
      reasonCode: REFUSAL_CODES.E_EVIDENCE_MALFORMED,
    });
    expect((await getNode(verifier(), enclaveId)).status).toBe(NodeStatus.Rejected);
    for (const sub of ['healthz', 'v1/node', 'evidence']) {
      const r = await fetch(new URL(`node/${enclaveId}/${sub}`, open.url));
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error: { code: 'E_FORBIDDEN' } });
    }
    expect(connections).toBe(before);
  }, 60_000);

  it('an Active node whose endpoint is a private address gets no connection; with the option, the relay streams under its cap and its bounds', async () => {
    const { enclaveId, round } = await register('active');
    await approveNode(verifier(), { enclaveId, round, evidenceDigest });
    expect((await getNode(verifier(), enclaveId)).status).toBe(NodeStatus.Active);
    // The default dashboard (the one tests share): the destination check refuses 127.0.0.1.
    const before = connections;
    const r = await fetch(new URL(`node/${enclaveId}/healthz`, dash.url));
    expect(r.status).toBe(403);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('E_ENDPOINT_FORBIDDEN');
    expect(body.error.message).not.toMatch(/127\.0\.0\.1/);
    expect(connections).toBe(before);

    // A devnet's dashboard relays to its loopback nodes, bounded.
    const open = await serveDashboard({
      rpcUrl: anvil.rpcUrl,
      deployment,
      allowPrivateEndpoints: true,
      maxNodeResponseBytes: 1 << 20,
      maxConcurrentRelays: 2,
      maxConcurrentRelaysPerClient: 1,
    });
    dashboards.push(open);
    const ok = await fetch(new URL(`node/${enclaveId}/healthz`, open.url));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    // 2 MiB streamed without a length: cut after the first MiB (the visitor's read fails).
    const big = await fetch(new URL(`node/${enclaveId}/v1/node`, open.url));
    expect(big.status).toBe(200);
    await expect(big.arrayBuffer()).rejects.toThrow();
    // A declared 4 MiB: refused before a byte is relayed.
    const declared = await fetch(new URL(`node/${enclaveId}/v1/artifacts/0x${'ab'.repeat(32)}`, open.url));
    expect(declared.status).toBe(413);

    // One relay at a time per client: a second one while the first is held is 429.
    const job = `node/${enclaveId}/v1/jobs/0x${'cd'.repeat(32)}`;
    const first = fetch(new URL(job, open.url));
    while (held.length === 0) await new Promise((res) => setTimeout(res, 20));
    const second = await fetch(new URL(`node/${enclaveId}/healthz`, open.url));
    expect(second.status).toBe(429);
    held.shift()!.end('{}');
    expect((await first).status).toBe(200);
  }, 60_000);
});
