import { serveDashboard, type DashboardServer } from '@firn/dashboard';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// R6 red team, decisions 1686/1748/1751 ("key-like host labels are masked"). Some hosted RPCs put
// the API key in the host name (`https://KEY.rpc.example/`); 1751 masks such a label everywhere the
// URL is written. The public dashboard server (apps/dashboard/server/serveDashboard.ts) answers a
// failed upstream call of its POST /rpc proxy with E_UNAVAILABLE "cannot reach
// ${new URL(rpcUrl).origin}": the origin keeps the host name whole, unredacted, and that message is
// the HTTP body any visitor of the dashboard gets (sendError). Whenever the operator's RPC is down,
// slow past 30 s or refuses the connection, any stranger who POSTs one eth_blockNumber to /rpc reads
// the operator's RPC key. The dashboard's own doc says the RPC URL is "never handed to the page".
// Safe outcome: the error body carries the endpoint only through redactRpcUrl (no key label).
const KEY = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b';
let dash: DashboardServer;

beforeAll(async () => {
  dash = await serveDashboard({
    rpcUrl: `https://${KEY}.rpc.invalid/`,
    deployment: {
      chainId: 31337,
      jobMarket: `0x${'11'.repeat(20)}`,
      registry: `0x${'22'.repeat(20)}`,
      verifierSet: `0x${'33'.repeat(20)}`,
      deployBlock: 0n,
    } as never,
  });
}, 120_000);

afterAll(async () => {
  await dash?.close();
});

describe('dashboard /rpc when the upstream RPC cannot be reached', () => {
  it("does not hand a stranger the RPC URL's key label", async () => {
    const r = await fetch(new URL('rpc', dash.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_blockNumber', params: [] }),
    });
    const text = await r.text();
    expect(r.status).toBe(502);
    expect(text, `the dashboard answered: ${text}`).not.toContain(KEY);
  }, 60_000);
});
