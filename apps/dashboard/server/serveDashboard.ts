import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createFirnClients,
  type FirnClients,
  type FirnDeployment,
  firnJobMarketAbi,
  firnTransport,
  getNode,
  NodeStatus,
} from '@firn/chain';
import {
  FirnError,
  type Hex,
  parseEvidenceBundle,
  readBodyCapped,
  redactRpcUrl,
  redactUrlsIn,
} from '@firn/core';
import { fetchFromNode, type NodeRequestInit } from '@firn/core/fetchFromNode';
import { type Address, createPublicClient, isAddress } from 'viem';
import { buildDashboard, type DashboardAsset } from './buildDashboard.ts';
import { checkReadOnlyRpcRequest, MAX_RPC_REQUEST_BYTES } from './readOnlyRpc.ts';

/** What the page reads from GET /config.json: where the contracts are (the RPC is always /rpc). */
export interface DashboardConfig {
  chainId: number;
  jobMarket: Address;
  registry: Address;
  verifierSet: Address;
  rewards?: Address;
  /** First block the event scans start at (decimal string). */
  fromBlock: string;
}

export interface ServeDashboardOptions {
  /** The chain's JSON-RPC URL (read through the proxy only, never handed to the page). */
  rpcUrl: string;
  deployment: Pick<
    FirnDeployment,
    'chainId' | 'jobMarket' | 'registry' | 'verifierSet' | 'rewards' | 'deployBlock'
  >;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /**
   * Relay to node endpoints on loopback, private, link-local and other internal addresses (a
   * devnet's nodes on 127.0.0.1). Default false: a registered endpoint never makes this server
   * reach its own network for a visitor (decision 1834).
   */
  allowPrivateEndpoints?: boolean;
  /** Most node relays at once, default 32; a relay beyond it is answered 503. */
  maxConcurrentRelays?: number;
  /** Most node relays at once for one client address, default 4; a relay beyond it is answered 429. */
  maxConcurrentRelaysPerClient?: number;
  /** Largest node answer relayed, bytes (default MAX_NODE_RESPONSE_BYTES); a longer one is cut. */
  maxNodeResponseBytes?: number;
  /** Time for one node relay, the body included, ms (default 60 000). */
  relayTimeoutMs?: number;
}

export interface DashboardServer {
  url: string;
  /** Milliseconds the page took to build. */
  buildMs: number;
  close(): Promise<void>;
}

/** Largest node response relayed to the page, bytes (sealed outputs the page opens). */
export const MAX_NODE_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Default bound of node relays at once, in all and per client address (decision 1834). */
export const DEFAULT_MAX_CONCURRENT_RELAYS = 32;
export const DEFAULT_MAX_CONCURRENT_RELAYS_PER_CLIENT = 4;
/** Largest chain response relayed to the page, bytes. */
export const MAX_RPC_RESPONSE_BYTES = 32 * 1024 * 1024;

const BYTES32 = '0x[0-9a-fA-F]{64}';
/** The node API reads the page may make through the proxy (all GET; the node serves ciphertext and public facts). */
const NODE_READS = [
  /^\/healthz$/,
  /^\/v1\/node$/,
  new RegExp(`^/v1/jobs/${BYTES32}$`),
  new RegExp(`^/v1/jobs/${BYTES32}/result$`),
  new RegExp(`^/v1/artifacts/${BYTES32}$`),
];

/** Marks the dashboard's own requests to node endpoints (loop guard). */
const RELAY_HEADER = 'x-firn-dashboard-relay';

const SECURITY_HEADERS = {
  // The page may talk to this server only: a requester's key loaded in it has nowhere else to go.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type });
  res.end(body);
}

function sendError(res: ServerResponse, e: unknown): void {
  const err = e instanceof FirnError ? e : new FirnError('E_INTERNAL', 'internal error');
  const status =
    // Every relay place taken: the server is busy, not the node (decision 1834).
    err.code === 'E_UNAVAILABLE' && err.details?.busy === true
      ? 503
      : ({
          E_FORBIDDEN: 403,
          E_ENDPOINT_FORBIDDEN: 403,
          E_NOT_FOUND: 404,
          E_TOO_LARGE: 413,
          E_PARSE: 400,
          E_INVALID_INPUT: 400,
          E_RATE_LIMITED: 429,
          E_UNAVAILABLE: 502,
          E_TIMEOUT: 504,
        }[err.code as string] ?? 500);
  // Every URL in a message through redactUrlsIn (decision 1751): the body goes to any visitor.
  const message = redactUrlsIn(err.message);
  send(res, status, 'application/json', JSON.stringify({ error: { code: err.code, message } }));
}

async function readCapped(req: IncomingMessage, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new FirnError('E_TOO_LARGE', `request body over ${max} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Fetch with a response size cap; E_UNAVAILABLE when the upstream cannot be reached, E_TOO_LARGE over the cap. */
async function fetchCapped(
  url: string,
  init: RequestInit,
  max: number,
): Promise<{ status: number; type: string; body: Uint8Array }> {
  let r: Response;
  try {
    r = await fetch(url, {
      ...init,
      headers: { ...(init.headers as Record<string, string> | undefined), [RELAY_HEADER]: '1' },
      redirect: 'error',
      signal: AbortSignal.timeout(30_000),
    });
  } catch {
    throw new FirnError('E_UNAVAILABLE', `cannot reach ${redactRpcUrl(new URL(url).origin)}`);
  }
  const declared = Number(r.headers.get('content-length') ?? 0);
  if (declared > max) throw new FirnError('E_TOO_LARGE', `upstream response over ${max} bytes`);
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = r.body?.getReader();
  for (;;) {
    const c = reader ? await reader.read() : { done: true as const, value: undefined };
    if (c.done) break;
    n += c.value.length;
    if (n > max) {
      await reader?.cancel();
      throw new FirnError('E_TOO_LARGE', `upstream response over ${max} bytes`);
    }
    parts.push(c.value);
  }
  return {
    status: r.status,
    type: r.headers.get('content-type') ?? 'application/octet-stream',
    body: Buffer.concat(parts),
  };
}

/** Until `res` can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Stream a node's answer to the visitor as it arrives, never held whole: refused (413) when it
 * declares more than `max` bytes, cut (the connection closed before the end) when it sends more.
 * The visitor's pace is the node read's pace, all within the relay's time.
 */
async function relayBody(up: Response, res: ServerResponse, max: number): Promise<void> {
  const declared = Number(up.headers.get('content-length') ?? 0);
  if (declared > max) {
    await up.body?.cancel().catch(() => {});
    throw new FirnError('E_TOO_LARGE', `the node's answer is over ${max} bytes`);
  }
  const type = (up.headers.get('content-type') ?? '').startsWith('application/json')
    ? 'application/json'
    : 'application/octet-stream';
  res.writeHead(up.status, { ...SECURITY_HEADERS, 'content-type': type });
  const reader = up.body?.getReader();
  if (reader === undefined) return void res.end();
  let n = 0;
  try {
    for (;;) {
      const c = await reader.read();
      if (c.done) break;
      n += c.value.length;
      if (n > max || res.destroyed) {
        res.destroy();
        return;
      }
      if (!res.write(c.value)) await drained(res);
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * Serve the dashboard against a chain: the page (built in memory at start), GET /config.json, a
 * read-only JSON-RPC proxy at POST /rpc (READ_ONLY_RPC_METHODS), and GET /node/{enclaveId}/{path}
 * relaying a fixed list of node API reads to the endpoint the registry holds for that Enclave ID
 * (never a URL the page names) when the node is Active, through fetchFromNode (its destination
 * checked unless `allowPrivateEndpoints`), streamed under a byte cap, at most
 * `maxConcurrentRelays` at once and `maxConcurrentRelaysPerClient` per client address (1834). GET /node/{enclaveId}/evidence asks the node for fresh evidence with
 * a nonce this server draws and returns what it declares (TEE type, GPU architectures, collateral
 * present); the verifiers' votes on chain are what checked it. No route writes to the chain or a node.
 */
export async function serveDashboard(o: ServeDashboardOptions): Promise<DashboardServer> {
  const { assets, ms } = await buildDashboard();
  const d = o.deployment;
  const config: DashboardConfig = {
    chainId: d.chainId,
    jobMarket: d.jobMarket,
    registry: d.registry,
    verifierSet: d.verifierSet,
    ...(d.rewards ? { rewards: d.rewards } : {}),
    fromBlock: d.deployBlock.toString(),
  };
  // Only the registry is read here (getNode); the data ledger is not part of the dashboard's view.
  const clients: FirnClients = createFirnClients(o.rpcUrl, undefined, {
    ...d,
    dataLedger: '0x0000000000000000000000000000000000000000',
  });
  const evidenceCache = new Map<string, { at: number; body: string }>();
  const maxNodeResponseBytes = o.maxNodeResponseBytes ?? MAX_NODE_RESPONSE_BYTES;

  const allowPrivateEndpoints = o.allowPrivateEndpoints === true;
  const relayTimeoutMs = o.relayTimeoutMs ?? 60_000;
  const maxRelays = o.maxConcurrentRelays ?? DEFAULT_MAX_CONCURRENT_RELAYS;
  const maxRelaysPerClient = o.maxConcurrentRelaysPerClient ?? DEFAULT_MAX_CONCURRENT_RELAYS_PER_CLIENT;
  let relays = 0;
  const relaysOf = new Map<string, number>();

  /**
   * A place for one node relay (its chain read included), or a refusal: 429 when this client
   * address holds its share, 503 when every place is taken. The returned function frees it once.
   */
  function takeRelay(client: string): () => void {
    const mine = relaysOf.get(client) ?? 0;
    if (mine >= maxRelaysPerClient)
      throw new FirnError('E_RATE_LIMITED', `at most ${maxRelaysPerClient} node reads at once per client`);
    if (relays >= maxRelays)
      throw new FirnError(
        'E_UNAVAILABLE',
        'the dashboard is relaying all the node reads it can; try again shortly',
        {
          details: { busy: true },
        },
      );
    relays++;
    relaysOf.set(client, mine + 1);
    let freed = false;
    return () => {
      if (freed) return;
      freed = true;
      relays--;
      const left = (relaysOf.get(client) ?? 1) - 1;
      if (left <= 0) relaysOf.delete(client);
      else relaysOf.set(client, left);
    };
  }

  /**
   * The endpoint of an Active node. A node in any other status (Pending, Rejected, Exited,
   * Slashed) is not relayed to: a refused registration costs one fee and must not buy a relay to
   * whatever its endpoint names (decision 1834).
   */
  async function endpointOf(enclaveId: Hex): Promise<string> {
    const n = await getNode(clients, enclaveId);
    if (n.status === NodeStatus.None)
      throw new FirnError('E_NOT_FOUND', `no node with Enclave ID ${enclaveId}`);
    if (n.status !== NodeStatus.Active)
      throw new FirnError('E_FORBIDDEN', 'the dashboard relays to Active nodes only');
    let u: URL;
    try {
      u = new URL(n.endpoint);
    } catch {
      throw new FirnError('E_UNAVAILABLE', 'the node registered an endpoint that is not a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      throw new FirnError('E_UNAVAILABLE', 'the node registered an endpoint that is not http(s)');
    return u.origin + u.pathname.replace(/\/$/, '');
  }

  /**
   * One request to a node's endpoint through fetchFromNode (decision 1832): the destination
   * checked (unless allowPrivateEndpoints), no redirect followed, the body asked for and taken
   * uncompressed only, the whole exchange within relayTimeoutMs. A forbidden destination is
   * refused in words that name no address (which internal address a name resolves to is not the
   * visitor's to learn).
   */
  async function askNode(url: string, init: NodeRequestInit): Promise<Response> {
    try {
      return await fetchFromNode(
        url,
        { ...init, headers: { ...init.headers, [RELAY_HEADER]: '1' } },
        { timeoutMs: relayTimeoutMs, what: 'the node read', identity: true, allowPrivateEndpoints },
      );
    } catch (e) {
      if (e instanceof FirnError && e.code === 'E_ENDPOINT_FORBIDDEN')
        throw new FirnError(
          'E_ENDPOINT_FORBIDDEN',
          'the node registered an endpoint that is not a public address',
        );
      throw e;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'POST' && path === '/rpc') {
      const raw = await readCapped(req, MAX_RPC_REQUEST_BYTES);
      const calls = checkReadOnlyRpcRequest(raw);
      // Forward the calls as checked, rebuilt from their four fields, never the page's bytes: an
      // upstream whose JSON reader differs (Go's encoding/json matches keys case-insensitively, so
      // "Method" overrides "method") must see exactly the method that was checked.
      const canonical = calls.map((c) => ({
        jsonrpc: '2.0',
        id: c.id ?? null,
        method: c.method,
        ...(c.params === undefined ? {} : { params: c.params }),
      }));
      const body = JSON.stringify(/^\s*\[/.test(raw) ? canonical : canonical[0]);
      const up = await fetchCapped(
        o.rpcUrl,
        { method: 'POST', headers: { 'content-type': 'application/json' }, body },
        MAX_RPC_RESPONSE_BYTES,
      );
      return send(res, up.status, 'application/json', up.body);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new FirnError('E_FORBIDDEN', 'the dashboard is read-only: GET, and POST /rpc for chain reads');
    if (path === '/config.json') return send(res, 200, 'application/json', JSON.stringify(config));
    const asset = assets.get(path === '/index.html' ? '/' : path) as DashboardAsset | undefined;
    if (asset) return send(res, 200, asset.contentType, asset.body);
    const m = /^\/node\/(0x[0-9a-fA-F]{64})(\/.*)$/.exec(path);
    if (m) {
      // A registered endpoint may point back at a dashboard (this one or another): a request that a
      // dashboard relayed is never relayed again, so one GET cannot become an endless loop.
      if (req.headers[RELAY_HEADER] !== undefined)
        throw new FirnError(
          'E_FORBIDDEN',
          'the dashboard does not relay a request another dashboard relayed',
        );
      const enclaveId = m[1]!.toLowerCase() as Hex;
      const sub = m[2]!;
      if (sub !== '/evidence' && !NODE_READS.some((r) => r.test(sub)))
        throw new FirnError(
          'E_FORBIDDEN',
          'the dashboard relays node reads only (node, health, job, result, artifact)',
        );
      if (sub === '/evidence') {
        const hit = evidenceCache.get(enclaveId);
        if (hit && Date.now() - hit.at < 60_000) return send(res, 200, 'application/json', hit.body);
      }
      const free = takeRelay(req.socket.remoteAddress ?? '');
      try {
        const base = await endpointOf(enclaveId);
        if (sub === '/evidence') {
          const nonce = `0x${randomBytes(32).toString('hex')}`;
          const up = await askNode(`${base}/v1/attestation`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ nonce }),
          });
          if (up.status !== 200) {
            await up.body?.cancel().catch(() => {});
            throw new FirnError('E_UNAVAILABLE', `the node answered ${up.status} to an attestation request`);
          }
          const b = parseEvidenceBundle(await readBodyCapped(up, 1 << 20, 'evidence bundle'));
          const body = JSON.stringify({
            teeType: b.teeType,
            gpus: (b.gpu ?? []).map((g) => String(g.arch).slice(0, 32)),
            collateral: b.collateral !== undefined,
            enclaveAddress: b.enclaveAddress,
            nonce,
          });
          evidenceCache.set(enclaveId, { at: Date.now(), body });
          return send(res, 200, 'application/json', body);
        }
        const up = await askNode(`${base}${sub}`, { method: 'GET' });
        return await relayBody(up, res, maxNodeResponseBytes);
      } finally {
        free();
      }
    }
    throw new FirnError('E_NOT_FOUND', `no such page: ${path.slice(0, 100)}`);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/`,
    buildMs: ms,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The deployment behind a job market, read from the chain: its registry, verifier set and reward
 * pool, the chain id, and the block the market was deployed at (binary search on eth_getCode; 0 when
 * the RPC keeps no history). E_INVALID_INPUT when `registry` is given and is not the market's;
 * E_NOT_FOUND when no contract is at the market address.
 */
export async function resolveDashboardDeployment(o: {
  rpcUrl: string;
  market: Address;
  registry?: Address;
  fromBlock?: bigint;
}): Promise<ServeDashboardOptions['deployment']> {
  if (!isAddress(o.market)) throw new FirnError('E_INVALID_INPUT', '--market must be a 20-byte hex address');
  const pc = createPublicClient({ transport: firnTransport(o.rpcUrl) });
  let chainId: number;
  try {
    chainId = await pc.getChainId();
  } catch {
    throw new FirnError('E_UNAVAILABLE', `cannot reach the chain at ${redactRpcUrl(o.rpcUrl)}`);
  }
  const code = await pc.getCode({ address: o.market });
  if (code === undefined || code === '0x') throw new FirnError('E_NOT_FOUND', `no contract at ${o.market}`);
  const read = (functionName: 'registry' | 'verifierSet' | 'rewardPool') =>
    pc.readContract({ address: o.market, abi: firnJobMarketAbi, functionName }) as Promise<Address>;
  const [registry, verifierSet, rewards] = await Promise.all([
    read('registry'),
    read('verifierSet'),
    read('rewardPool'),
  ]);
  if (o.registry && o.registry.toLowerCase() !== registry.toLowerCase())
    throw new FirnError(
      'E_INVALID_INPUT',
      `--registry ${o.registry} is not the market's registry (${registry})`,
    );
  let deployBlock = o.fromBlock;
  if (deployBlock === undefined) {
    let lo = 0n;
    let hi = await pc.getBlockNumber();
    try {
      while (lo < hi) {
        const mid = (lo + hi) / 2n;
        const c = await pc.getCode({ address: o.market, blockNumber: mid });
        if (c && c !== '0x') hi = mid;
        else lo = mid + 1n;
      }
      deployBlock = lo;
    } catch {
      deployBlock = 0n; // no archive state: scan from genesis
    }
  }
  return {
    chainId,
    jobMarket: o.market,
    registry,
    verifierSet,
    ...(/^0x0{40}$/i.test(rewards) ? {} : { rewards }),
    deployBlock,
  };
}
