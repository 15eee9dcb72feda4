/**
 * A counting JSON-RPC proxy for the scale benchmark (`SCALE_RPC_METER=1`): it sits between every
 * devnet client (nodes, verifiers, the requesters) and anvil and records, per calling process and
 * per call shape, how many calls were made, how long anvil took to answer them (wall ms, measured
 * from the proxy's forward to the answer) and how many bytes it answered. A call shape is the
 * method and what decides its cost on anvil: for `eth_getLogs` the event (topic0, named from the
 * ABIs given) and the width of the block range and whether it starts at the deployment block; for
 * `eth_call`/`eth_estimateGas` the function (selector, named from the ABIs) and the block read
 * (latest, or how many blocks behind the head). Which process made a call is found from the TCP
 * connection (/proc/net/tcp and /proc/PID/fd, Linux; "?" elsewhere).
 *
 * A measuring tool, not part of the path under test: it adds a local hop to every chain call and
 * the bench process's CPU to forward it, so a metered run's latencies are not figures of record.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type Abi, toEventSelector, toFunctionSelector } from 'viem';

/** What the meter holds for one (caller, shape). */
export interface RpcMeterRow {
  caller: string;
  shape: string;
  calls: number;
  /** Sum of anvil's answer time, ms. */
  ms: number;
  /** Largest single answer time, ms. */
  maxMs: number;
  /** Answer bytes (JSON), summed. */
  bytes: number;
  /** eth_getLogs: blocks scanned, summed (to - from + 1). */
  blocks: number;
}

export interface RpcMeter {
  url: string;
  /** The rows since the last take (or the start), largest anvil time first; clears them. */
  take(label: (pid: number) => string): RpcMeterRow[];
  close(): Promise<void>;
}

interface RpcReq {
  method?: string;
  params?: unknown[];
}

const MAX_BODY = 16 * 1024 * 1024;

function bucket(n: bigint): string {
  if (n <= 1n) return '1';
  if (n <= 32n) return '<=32';
  if (n <= 256n) return '<=256';
  if (n <= 1024n) return '<=1k';
  if (n <= 5000n) return '<=5k';
  return '>5k';
}

/** The socket's client process: the pid holding the other end of this loopback connection. */
function pidOfPeer(remotePort: number): number | undefined {
  const hexPort = remotePort.toString(16).toUpperCase().padStart(4, '0');
  let inode: string | undefined;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if (cols[1]!.endsWith(`:${hexPort}`)) {
        inode = cols[9];
        break;
      }
    }
    if (inode) break;
  }
  if (!inode || inode === '0') return undefined;
  const want = `socket:[${inode}]`;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`) === want) return Number(p);
      } catch {}
    }
  }
  return undefined;
}

/** Start the meter in front of `target` (anvil's URL). `deployBlock` marks scans from the deployment. */
export async function startRpcMeter(
  target: string,
  abis: readonly Abi[],
  deployBlock: () => bigint,
): Promise<RpcMeter> {
  const events = new Map<string, string>();
  const fns = new Map<string, string>();
  for (const abi of abis)
    for (const item of abi) {
      try {
        if (item.type === 'event') events.set(toEventSelector(item).toLowerCase(), item.name);
        if (item.type === 'function') fns.set(toFunctionSelector(item).toLowerCase(), item.name);
      } catch {}
    }
  let head = 0n;
  const num = (tag: unknown): bigint | undefined => {
    if (typeof tag !== 'string') return undefined;
    if (tag === 'latest' || tag === 'pending' || tag === 'safe' || tag === 'finalized') return head;
    if (tag === 'earliest') return 0n;
    return tag.startsWith('0x') ? BigInt(tag) : undefined;
  };
  const shapeOf = (m: RpcReq): { shape: string; blocks: number } => {
    const method = m.method ?? '?';
    const p0 = m.params?.[0] as Record<string, unknown> | undefined;
    if (method === 'eth_getLogs' || method === 'eth_newFilter') {
      const topics = p0?.topics as unknown[] | undefined;
      const t0 = Array.isArray(topics) ? topics[0] : undefined;
      const ev =
        typeof t0 === 'string'
          ? (events.get(t0.toLowerCase()) ?? t0.slice(0, 10))
          : Array.isArray(t0)
            ? 'anyOf'
            : 'any';
      if (p0?.blockHash) return { shape: `${method} ${ev} blockHash`, blocks: 1 };
      const from = num(p0?.fromBlock ?? 'latest') ?? head;
      const to = num(p0?.toBlock ?? 'latest') ?? head;
      const width = to >= from ? to - from + 1n : 0n;
      const fromDeploy = from <= deployBlock() ? ' fromDeploy' : '';
      return { shape: `${method} ${ev} ${bucket(width)}${fromDeploy}`, blocks: Number(width) };
    }
    if (method === 'eth_call' || method === 'eth_estimateGas' || method === 'eth_createAccessList') {
      const data = (p0?.data ?? p0?.input) as string | undefined;
      const sel = typeof data === 'string' ? data.slice(0, 10).toLowerCase() : '';
      const fn = fns.get(sel) ?? (sel || 'transfer');
      const tag = m.params?.[1];
      let at = 'latest';
      if (typeof tag === 'string' && tag.startsWith('0x')) {
        const age = head - BigInt(tag);
        at = age <= 0n ? 'head' : `head-${bucket(age)}`;
      } else if (typeof tag === 'string') at = tag;
      return { shape: `${method} ${fn} @${at}`, blocks: 0 };
    }
    if (
      method === 'eth_getBlockByNumber' ||
      method === 'eth_getBalance' ||
      method === 'eth_getTransactionCount'
    ) {
      const tag = method === 'eth_getBlockByNumber' ? m.params?.[0] : m.params?.[1];
      let at = String(tag);
      if (typeof tag === 'string' && tag.startsWith('0x')) {
        const age = head - BigInt(tag);
        at = age <= 0n ? 'head' : `head-${bucket(age)}`;
      }
      return { shape: `${method} @${at}`, blocks: 0 };
    }
    return { shape: method, blocks: 0 };
  };

  const peerPid = new Map<number, number | undefined>();
  let rows = new Map<string, RpcMeterRow & { pid: number | undefined }>();
  const record = (pid: number | undefined, shape: string, ms: number, bytes: number, blocks: number) => {
    const key = `${pid}\u0000${shape}`;
    let r = rows.get(key);
    if (!r) {
      r = { pid, caller: '', shape, calls: 0, ms: 0, maxMs: 0, bytes: 0, blocks: 0 };
      rows.set(key, r);
    }
    r.calls++;
    r.ms += ms;
    r.maxMs = Math.max(r.maxMs, ms);
    r.bytes += bytes;
    r.blocks += blocks;
  };

  const server: Server = createServer((req, res) => {
    const sock = req.socket as Socket;
    const port = sock.remotePort ?? 0;
    if (!peerPid.has(port)) peerPid.set(port, pidOfPeer(port));
    const pid = peerPid.get(port);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) {
        res.writeHead(413);
        res.end();
        return;
      }
      const body = Buffer.concat(chunks);
      let parsed: RpcReq | RpcReq[] | undefined;
      try {
        parsed = JSON.parse(body.toString('utf8')) as RpcReq | RpcReq[];
      } catch {}
      const t = performance.now();
      fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (r) => {
          const text = await r.text();
          const ms = performance.now() - t;
          const list = parsed === undefined ? [] : Array.isArray(parsed) ? parsed : [parsed];
          if (list.length === 1 && list[0]!.method === 'eth_blockNumber') {
            try {
              const h = (JSON.parse(text) as { result?: string }).result;
              if (h) head = BigInt(h) > head ? BigInt(h) : head;
            } catch {}
          }
          for (const m of list) {
            const { shape, blocks } = shapeOf(m);
            record(pid, shape, ms / list.length, text.length / list.length, blocks);
          }
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(text);
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    take(label) {
      const merged = new Map<string, RpcMeterRow>();
      for (const r of rows.values()) {
        const caller = r.pid === undefined ? '?' : label(r.pid);
        const key = `${caller}\u0000${r.shape}`;
        const m = merged.get(key) ?? {
          caller,
          shape: r.shape,
          calls: 0,
          ms: 0,
          maxMs: 0,
          bytes: 0,
          blocks: 0,
        };
        m.calls += r.calls;
        m.ms += r.ms;
        m.maxMs = Math.max(m.maxMs, r.maxMs);
        m.bytes += r.bytes;
        m.blocks += r.blocks;
        merged.set(key, m);
      }
      rows = new Map();
      return [...merged.values()].sort((a, b) => b.ms - a.ms);
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
