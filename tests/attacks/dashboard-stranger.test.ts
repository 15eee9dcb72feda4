import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AnvilInstance,
  approveNode,
  createFirnClients,
  type FirnDeployment,
  getNode,
  joinVerifierSet,
  NodeStatus,
  registerNode,
} from '@firn/chain';
import { TEE_TYPES } from '@firn/core';
import { type DashboardServer, READ_ONLY_RPC_METHODS, serveDashboard } from '@firn/dashboard';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_MEASUREMENT, startDashboardChain, stopDashboardChain } from '../helpers/dashboardChain.ts';

// A stranger against the read-only dashboard server (decision 1121): anyone who can reach it, and an
// operator who can register a node (any endpoint string, stake only, Pending is enough).

const MEASUREMENT = DASHBOARD_MEASUREMENT;

const listen = (s: Server) =>
  new Promise<number>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)),
  );
const closeServer = (s: Server) =>
  new Promise<void>((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });

/**
 * How a Go JSON-RPC server (geth, erigon, and most Go proxies: encoding/json) reads a call: object
 * keys match struct fields case-insensitively, and a later key overwrites an earlier one. So
 * {"method":"eth_call","Method":"eth_sendTransaction"} is eth_sendTransaction to it.
 */
function goMethods(body: string): string[] {
  const parsed = JSON.parse(body) as unknown;
  const calls = Array.isArray(parsed) ? parsed : [parsed];
  return calls.map((c) => {
    let method = '';
    for (const [k, v] of Object.entries(c as Record<string, unknown>))
      if (k.toLowerCase() === 'method' && typeof v === 'string') method = v;
    return method;
  });
}

describe('attack: a stranger on the read-only dashboard', () => {
  let anvil: AnvilInstance;
  let deployment: FirnDeployment;
  let dash: DashboardServer;
  const servers: Server[] = [];
  const dashboards: DashboardServer[] = [];

  beforeAll(async () => {
    ({ anvil, deployment, dash } = await startDashboardChain());
  }, 120_000);

  afterAll(async () => {
    for (const d of dashboards) await d.close();
    for (const s of servers) await closeServer(s);
    await stopDashboardChain({ anvil, dash });
  });

  it('a write smuggled past the method check in a key a Go JSON-RPC server reads ("Method") never reaches the RPC', async () => {
    // The upstream RPC the dashboard fronts is a Go server (geth --dev unlocks an account).
    const executed: string[] = [];
    const upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const methods = goMethods(body);
        executed.push(...methods);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(methods.map((m, i) => ({ jsonrpc: '2.0', id: i, result: m }))));
      });
    });
    servers.push(upstream);
    const port = await listen(upstream);
    const goDash = await serveDashboard({ rpcUrl: `http://127.0.0.1:${port}`, deployment });
    dashboards.push(goDash);

    const tx = { from: anvil.accounts[1]!.address, to: anvil.accounts[2]!.address, value: '0x1' };
    const smuggled = `{"jsonrpc":"2.0","id":1,"method":"eth_call","Method":"eth_sendTransaction","params":[${JSON.stringify(tx)}]}`;
    const r = await fetch(new URL('rpc', goDash.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: smuggled,
    });
    await r.arrayBuffer();
    // The promise: whatever RPC it fronts, only READ_ONLY_RPC_METHODS are ever executed upstream.
    for (const m of executed) expect(READ_ONLY_RPC_METHODS.has(m), `upstream executed ${m}`).toBe(true);
  }, 60_000);

  it('an endpoint that points back at the dashboard cannot turn one request into an endless relay loop', async () => {
    // A counting hop in front of the dashboard, so the test can see how many relays one GET causes.
    let target = { host: '', port: '' };
    let hops = 0;
    const hop = createServer((req, res) => {
      hops++;
      const up = httpRequest(
        {
          host: target.host,
          port: target.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    servers.push(hop);
    const hopPort = await listen(hop);

    const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[4]!.privateKey, deployment, {
      pollingIntervalMs: 50,
    });
    // Only Active nodes are relayed to (1834): the deployment's one verifier (account 3) joins with
    // the whole stake before the registration and approves it alone.
    const verifier = createFirnClients(anvil.rpcUrl, anvil.accounts[3]!.privateKey, deployment, {
      pollingIntervalMs: 50,
    });
    await joinVerifierSet(verifier, parseEther('1'));
    const enclaveId = `0x${'e7'.repeat(32)}` as const;
    const evidenceDigest = `0x${'d7'.repeat(32)}` as const;
    await registerNode(operator, {
      enclaveId,
      teeType: TEE_TYPES.simulated,
      measurement: MEASUREMENT,
      platformIdHash: `0x${'a7'.repeat(32)}`,
      enclaveAddress: anvil.accounts[2]!.address,
      kemPublicKey: `0x${'4b'.repeat(32)}`,
      // The endpoint names the dashboard's own relay for this node.
      endpoint: `http://127.0.0.1:${hopPort}/node/${enclaveId}`,
      evidenceDigest,
      stake: parseEther('1'),
    });
    // This dashboard, as a devnet's does, relays to loopback endpoints: the relay header is what
    // must stop the loop.
    await approveNode(verifier, { enclaveId, round: 1, evidenceDigest });
    expect((await getNode(verifier, enclaveId)).status).toBe(NodeStatus.Active);
    const open = await serveDashboard({ rpcUrl: anvil.rpcUrl, deployment, allowPrivateEndpoints: true });
    dashboards.push(open);
    const openUrl = new URL(open.url);
    target = { host: openUrl.hostname, port: openUrl.port };

    const ac = new AbortController();
    const one = fetch(new URL(`node/${enclaveId}/healthz`, open.url), { signal: ac.signal }).catch(
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 3000));
    ac.abort();
    await one;
    const seen = hops;
    // Let any loop wind down before the other tests' servers close.
    await closeServer(hop);
    servers.splice(servers.indexOf(hop), 1);
    // One stranger's GET reaches the registered endpoint once (the relay works); it must not come back
    // to be relayed again.
    expect(seen).toBe(1);
  }, 60_000);
});
