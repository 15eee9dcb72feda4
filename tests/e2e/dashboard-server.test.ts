import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  type AnvilInstance,
  createFirnClients,
  type FirnDeployment,
  joinVerifierSet,
  registerNode,
  refuseNode,
} from '@firn/chain';
import { REFUSAL_CODES, repoRoot, TEE_TYPES } from '@firn/core';
import {
  checkReadOnlyRpcRequest,
  type DashboardServer,
  READ_ONLY_RPC_METHODS,
  resolveDashboardDeployment,
} from '@firn/dashboard';
import { createPublicClient, http, type PublicClient, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_MEASUREMENT, startDashboardChain, stopDashboardChain } from '../helpers/dashboardChain.ts';
import { advance, emptyNetwork, REASON_NAMES } from '../../apps/dashboard/src/network.ts';

const MEASUREMENT = DASHBOARD_MEASUREMENT;

/**
 * The dashboard server against a real anvil with the firn contracts: it serves the page and the
 * chain reads the page needs, and refuses every write, whatever the page (or anyone on the network)
 * sends it. Each attack is performed and the chain is checked to be unchanged.
 */
describe('dashboard server: read-only by construction', () => {
  let anvil: AnvilInstance;
  let deployment: FirnDeployment;
  let dash: DashboardServer;
  const rpc = (body: unknown) =>
    fetch(new URL('rpc', dash.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    ({ anvil, deployment, dash } = await startDashboardChain());
  }, 120_000);

  afterAll(async () => {
    await stopDashboardChain({ anvil, dash });
  });

  it('serves the page, its assets under a same-origin CSP, and the deployment as config', async () => {
    const page = await fetch(dash.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(await page.text()).toContain('/assets/main.js');
    const js = await fetch(new URL('assets/main.js', dash.url));
    expect(js.status).toBe(200);
    expect((await js.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    const config = (await (await fetch(new URL('config.json', dash.url))).json()) as Record<string, unknown>;
    expect(config).toMatchObject({
      chainId: deployment.chainId,
      jobMarket: deployment.jobMarket,
      registry: deployment.registry,
      fromBlock: deployment.deployBlock.toString(),
    });
    expect(JSON.stringify(config)).not.toContain(anvil.rpcUrl); // the page never learns the upstream RPC
  });

  it('forwards chain reads', async () => {
    const r = await rpc({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { result: string }).result).toMatch(/^0x[0-9a-f]+$/);
  });

  it('refuses a transaction sent through it from an account the node unlocks; nothing is mined', async () => {
    const chain = createPublicClient({ transport: http(anvil.rpcUrl) });
    const [from, to] = [anvil.accounts[1]!.address, anvil.accounts[2]!.address];
    const before = { block: await chain.getBlockNumber(), balance: await chain.getBalance({ address: to }) };
    const tx = { from, to, value: '0xde0b6b3a7640000' };
    for (const body of [
      { jsonrpc: '2.0', id: 1, method: 'eth_sendTransaction', params: [tx] },
      // smuggled in a batch behind a read
      [
        { jsonrpc: '2.0', id: 1, method: 'eth_blockNumber' },
        { jsonrpc: '2.0', id: 2, method: 'eth_sendTransaction', params: [tx] },
      ],
      { jsonrpc: '2.0', id: 1, method: 'anvil_setBalance', params: [to, '0xffffffffffffffffff'] },
      { jsonrpc: '2.0', id: 1, method: 'evm_mine', params: [] },
      { jsonrpc: '2.0', id: 1, method: 'eth_sendRawTransaction', params: ['0x02'] },
      { jsonrpc: '2.0', id: 1, method: 'anvil_impersonateAccount', params: [from] },
    ]) {
      const r = await rpc(body);
      expect(r.status).toBe(403);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('E_FORBIDDEN');
    }
    expect(await chain.getBlockNumber()).toBe(before.block);
    expect(await chain.getBalance({ address: to })).toBe(before.balance);
  });

  it('refuses malformed and oversized JSON-RPC with typed errors', async () => {
    expect(() => checkReadOnlyRpcRequest('not json')).toThrow(expect.objectContaining({ code: 'E_PARSE' }));
    expect(() => checkReadOnlyRpcRequest('{"method":"eth_blockNumber"}')).toThrow(
      expect.objectContaining({ code: 'E_PARSE' }),
    );
    expect(() => checkReadOnlyRpcRequest('[]')).toThrow(expect.objectContaining({ code: 'E_TOO_LARGE' }));
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_call', params: ['x'.repeat(70_000)] });
    const r = await fetch(new URL('rpc', dash.url), { method: 'POST', body: big });
    expect(r.status).toBe(413);
    for (const m of READ_ONLY_RPC_METHODS)
      expect(m).toMatch(/^(eth_(get|call|chainId|blockNumber)|net_version)/);
  });

  it('refuses every other method and every node path outside its read list; it relays only to registered endpoints', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const r = await fetch(new URL('config.json', dash.url), { method });
      expect(r.status).toBe(403);
    }
    const post = await fetch(new URL('node/0x' + '11'.repeat(32) + '/v1/jobs', dash.url), {
      method: 'POST',
      body: '{}',
    });
    expect(post.status).toBe(403);
    // An Enclave ID the registry does not know: nothing to relay to.
    const unknown = await fetch(new URL('node/0x' + '11'.repeat(32) + '/v1/node', dash.url));
    expect(unknown.status).toBe(404);
    // A URL instead of an Enclave ID is no route at all (the page cannot name where the server fetches).
    const ssrf = await fetch(new URL('node/http%3A%2F%2F169.254.169.254/latest/meta-data', dash.url));
    expect(ssrf.status).toBe(404);
    const nonRead = await fetch(new URL('node/0x' + '11'.repeat(32) + '/metrics', dash.url));
    expect(nonRead.status).toBe(403);
  });

  it('finds the deployment from the market alone and refuses a registry that is not the market’s', async () => {
    const d = await resolveDashboardDeployment({ rpcUrl: anvil.rpcUrl, market: deployment.jobMarket });
    expect(d.registry).toBe(deployment.registry);
    expect(d.verifierSet).toBe(deployment.verifierSet);
    expect(d.chainId).toBe(deployment.chainId);
    expect(d.deployBlock).toBeLessThanOrEqual(deployment.deployBlock + 10n);
    expect(d.deployBlock).toBeGreaterThan(0n);
    await expect(
      resolveDashboardDeployment({
        rpcUrl: anvil.rpcUrl,
        market: deployment.jobMarket,
        registry: deployment.verifierSet,
      }),
    ).rejects.toMatchObject({ code: 'E_INVALID_INPUT' });
    await expect(
      resolveDashboardDeployment({ rpcUrl: anvil.rpcUrl, market: anvil.accounts[2]!.address }),
    ).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  });

  it('`firn dashboard --rpc URL --market ADDR` serves the page against that chain; a wrong --registry is refused', async () => {
    const bin = join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs');
    const child = spawn(
      process.execPath,
      [bin, 'dashboard', '--rpc', anvil.rpcUrl, '--market', deployment.jobMarket, '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const until = Date.now() + 45_000;
      while (!/dashboard on (http:\S+)/.test(out)) {
        if (child.exitCode !== null || Date.now() > until) throw new Error(`firn dashboard: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const url = /dashboard on (http:\S+)/.exec(out)![1]!;
      const config = (await (await fetch(new URL('config.json', url))).json()) as Record<string, unknown>;
      expect(config).toMatchObject({ registry: deployment.registry, verifierSet: deployment.verifierSet });
    } finally {
      child.kill('SIGTERM');
    }
    let failed: unknown;
    try {
      execFileSync(
        process.execPath,
        [
          bin,
          'dashboard',
          '--rpc',
          anvil.rpcUrl,
          '--market',
          deployment.jobMarket,
          '--registry',
          deployment.verifierSet,
        ],
        { encoding: 'utf8', stdio: 'pipe', timeout: 45_000 },
      );
    } catch (e) {
      failed = e;
    }
    expect(String((failed as { stderr?: string }).stderr)).toContain('E_INVALID_INPUT');
  }, 100_000);

  it('the page’s chain model shows a verifier’s refusal with its reason code, and the node Rejected', async () => {
    const opts = { pollingIntervalMs: 50 };
    const operator = createFirnClients(anvil.rpcUrl, anvil.accounts[4]!.privateKey, deployment, opts);
    const verifier = createFirnClients(anvil.rpcUrl, anvil.accounts[3]!.privateKey, deployment, opts);
    await joinVerifierSet(verifier, parseEther('1'));
    const enclaveId = `0x${'e1'.repeat(32)}` as const;
    const evidenceDigest = `0x${'d1'.repeat(32)}` as const;
    await registerNode(operator, {
      enclaveId,
      teeType: TEE_TYPES.simulated,
      measurement: MEASUREMENT,
      platformIdHash: `0x${'a1'.repeat(32)}`,
      enclaveAddress: anvil.accounts[2]!.address,
      kemPublicKey: `0x${'4b'.repeat(32)}`,
      endpoint: 'http://127.0.0.1:9',
      evidenceDigest,
      stake: parseEther('1'),
    });
    await refuseNode(verifier, {
      enclaveId,
      round: 1,
      evidenceDigest,
      reasonCode: REFUSAL_CODES.E_EVIDENCE_TCB,
    });

    const client = createPublicClient({ transport: http(new URL('rpc', dash.url).href) }) as PublicClient;
    const config = (await (await fetch(new URL('config.json', dash.url))).json()) as Parameters<
      typeof advance
    >[1];
    // Small log ranges: the chunked reader must stitch several eth_getLogs calls through the proxy.
    const v = emptyNetwork(BigInt(config.fromBlock));
    const head = await client.getBlockNumber();
    while (v.cursor < head) await advance(client, config, v, 3n);
    const refusal = v.votes.find((x) => x.kind === 'refuse' && x.subject === enclaveId);
    expect(refusal).toMatchObject({ verifier: anvil.accounts[3]!.address, reasonCode: 9 });
    expect(REASON_NAMES[refusal!.reasonCode]).toBe('E_EVIDENCE_TCB');
    expect(v.nodes.get(enclaveId)).toMatchObject({ status: 3, measurementAllowed: true }); // Rejected
    expect(v.verifiers.get(anvil.accounts[3]!.address)).toMatchObject({ status: 1, stake: parseEther('1') });
  });

  it('`npx firn --help` works from the repository root and lists the dashboard command', () => {
    const out = execFileSync('npx', ['--no-install', 'firn', '--help'], {
      cwd: repoRoot(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out).toContain('Usage: firn');
    expect(out).toMatch(/dashboard\s/);
  }, 60_000);
});
