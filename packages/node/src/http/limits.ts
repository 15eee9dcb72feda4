import { type IncomingMessage, maxHeaderSize, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FirnError } from '@firn/core';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { DEFAULT_HEALTH_REFRESH_MS } from './sharedHealth.ts';

/**
 * Connection and request limits of the node API (docs/api.md, "Limits"). The defaults let one
 * legitimate multi-GB upload finish at any steady rate (there is no whole-request deadline, only
 * an idle timeout), while a client that opens many sockets, sends headers slowly, stalls a body
 * or floods the mutating routes is cut off or answered 429.
 */
export interface HttpLimits {
  /** Whole request headers must arrive within this many ms (slowloris). Default 10 000. */
  headersTimeoutMs: number;
  /** A socket with no bytes in either direction for this long is closed (a stalled upload). Default 30 000. */
  idleTimeoutMs: number;
  /** Open sockets over all clients; further connections are refused. Default 512. */
  maxConnections: number;
  /** Open sockets per remote IP address; further ones get 429 and are closed. Default 64. */
  maxConnectionsPerIp: number;
  /** Mutating requests (uploads, job and session submissions, session closes, attestations) per IP per second. Default 50. */
  mutatingRequestsPerSecondPerIp: number;
  /**
   * Session messages per IP per second: every POST /v1/sessions/{id}/requests, counted when it
   * arrives, before its session, token or header is looked at (decision 1761: a guessed token
   * costs the sender its own budget), and every frame of a session stream. Over it 429
   * E_RATE_LIMITED with Retry-After. Its own budget: a warm session is made for hundreds of small
   * requests a second. Default 1000.
   */
  sessionRequestsPerSecondPerIp: number;
  /** Uploads in progress over all uploaders; more get 429. Default 8. */
  maxConcurrentUploads: number;
  /** Uploads in progress per uploader address; more get 429. Default 2. */
  maxConcurrentUploadsPerAddress: number;
  /**
   * Uploads in progress from one network prefix (/24 IPv4, /64 IPv6), whatever the uploader
   * addresses; more get 429. Default 4 (half the node's upload slots).
   */
  maxConcurrentUploadsPerPrefix: number;
  /** A request body gets this long before its transfer rate is checked, ms. Default 10 000. */
  bodyGraceMs: number;
  /** The window the body rate is measured over, ms. Default 10 000. */
  bodyRateWindowMs: number;
  /**
   * After the grace, a request body must bring at least this many bytes in every window (while
   * the node is waiting for them), or the connection is closed. A body with a Content-Length
   * must also be complete within bodyGraceMs + length / (this per window). Default 65 536
   * (6.5 KiB/s: a 2 GiB upload may take up to 91 hours).
   */
  minBodyBytesPerWindow: number;
  /**
   * Reads anyone may make without a credential (GET /v1/jobs/{id}, its /result and /events,
   * GET /v1/artifacts/{id}, and since decision 1761 GET /healthz, /metrics, /v1/node and
   * /v1/openapi.json), per IP per second, one budget for all of them; more get 429 with
   * Retry-After. Each answer's own work is bounded (decision 1744); this bounds how often one
   * client makes the node do it. Default 200.
   */
  readRequestsPerSecondPerIp: number;
  /**
   * GET /healthz answers from one health check (an enclave `hello`, a database write) made at
   * most once in this many ms, shared by every request (decision 1761); a part that goes down is
   * reported at most this much later. Default 1000.
   */
  healthRefreshMs?: number;
  /** Open event streams (GET /v1/jobs/{id}/events) per remote IP; more get 429. Default 16. */
  maxEventStreamsPerIp: number;
  /**
   * Attestations (POST /v1/attestation) the enclave produces for clients at once, over all
   * clients. Each is a quote (on SGX/TDX a call to the quoting service) that every job and
   * session call through the enclave pipe waits behind. Shared fairly (FairInFlightCap,
   * decision 1740): a client over its share waits for its own places, and a freed place goes to
   * the waiting client holding the fewest. Default 4.
   */
  maxAttestationsInFlight: number;
  /**
   * Attestations one client (IPv4 address, IPv6 /64) has in the enclave at once; its further
   * requests wait (at most 2 per client, 5 s) or get 429. Default 2 (half the places: one client
   * never holds them all).
   */
  maxAttestationsInFlightPerClient?: number;
  /**
   * An upload may be evicted for a newcomer (when every upload slot is held) once it has held its
   * slot this long, ms. Default 10 000 (the body-rate grace: its rate means something by then).
   */
  uploadEvictionMinAgeMs: number;
  /**
   * An upload whose body has averaged at least this many bytes per second since it took its slot
   * is never evicted; a slower one may be when the slots are full and another upload waits
   * (decision 1660). Default 262 144 (256 KiB/s, 2 Mbit/s: a 2 GiB upload within 2.3 hours);
   * 0 turns eviction off.
   */
  uploadKeepBytesPerSecond: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  maxConnections: 512,
  maxConnectionsPerIp: 64,
  mutatingRequestsPerSecondPerIp: 50,
  sessionRequestsPerSecondPerIp: 1000,
  readRequestsPerSecondPerIp: 200,
  healthRefreshMs: DEFAULT_HEALTH_REFRESH_MS,
  maxConcurrentUploads: 8,
  maxConcurrentUploadsPerAddress: 2,
  maxConcurrentUploadsPerPrefix: 4,
  bodyGraceMs: 10_000,
  bodyRateWindowMs: 10_000,
  minBodyBytesPerWindow: 64 * 1024,
  maxEventStreamsPerIp: 16,
  maxAttestationsInFlight: 4,
  maxAttestationsInFlightPerClient: 2,
  uploadEvictionMinAgeMs: 10_000,
  uploadKeepBytesPerSecond: 256 * 1024,
});

/**
 * The network prefix an address is grouped by: /24 for IPv4 (and IPv4-mapped IPv6), /64 for
 * IPv6. A handful of addresses from one network share their group's limits.
 */
export function ipPrefix(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/i.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (!ip.includes(':')) return ip;
  // Expand "::" to full 8 groups, keep the first four.
  const [head, tail] = ip.split('%')[0]!.toLowerCase().split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => (g || '0').replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * The key every per-IP limit counts a client under (request rates, open connections, event and
 * session streams; decision 1661): an IPv4 address itself (IPv4-mapped IPv6 as IPv4), and for
 * IPv6 its /64, since one subscriber, VM or home router holds a whole /64 and can send from a
 * fresh address of it per request. A key already in this form is returned unchanged.
 */
export function clientKey(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!ip.includes(':') || ip.endsWith('/64')) return ip;
  return ipPrefix(ip);
}

/** The JSON error body of the API as raw HTTP/1.1, for a socket refused before any request is parsed. */
export function rawJsonError(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  const retry = status === 429 || status === 503 ? 'Retry-After: 1\r\n' : '';
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`
  );
}

/**
 * Answer what Node's HTTP parser refuses (oversized or malformed headers, headers not complete in
 * time) with the API's JSON error body naming the cause, instead of Node's bare status line.
 */
function answerClientError(server: Server, limits: HttpLimits) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    const busy = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    const answer =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? rawJsonError(
            431,
            'Request Header Fields Too Large',
            'E_TOO_LARGE',
            `request headers over the node's limit of ${(server as { maxHeaderSize?: number }).maxHeaderSize ?? maxHeaderSize} bytes`,
          )
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? rawJsonError(
              408,
              'Request Timeout',
              'E_TIMEOUT',
              `request headers not complete within ${limits.headersTimeoutMs} ms`,
            )
          : rawJsonError(
              400,
              'Bad Request',
              'E_INVALID_INPUT',
              `malformed HTTP request (${err.code ?? 'parse error'}): check the request line and headers`,
            );
    socket.end(answer);
  };
}

/** Per-socket bookkeeping for eviction: when it connected, and whether the node is serving it. */
interface SocketInfo {
  since: number;
  prefix: string;
}
const SERVING = Symbol('firn.serving');
type TrackedSocket = Socket & { [SERVING]?: boolean };

/** A connection must be this old before it can be chosen for eviction, ms (its request is under way). */
const EVICTION_MIN_AGE_MS = 1_000;

/**
 * Pick the connection to close when the node is full: from the network prefix holding the most
 * connections, the one (older than a second, not `except`) that brought the fewest bytes per
 * second, preferring those the node is not serving (event streams, chain waits) to those it is.
 */
function pickVictim(
  groups: Map<string, Map<TrackedSocket, SocketInfo>>,
  except: Socket,
  now: number,
): TrackedSocket | undefined {
  const ordered = [...groups.values()].sort((a, b) => b.size - a.size);
  for (const group of ordered) {
    let best: TrackedSocket | undefined;
    let bestKey: [number, number] | undefined;
    for (const [s, info] of group) {
      const age = now - info.since;
      if (s === except || s.destroyed || age < EVICTION_MIN_AGE_MS) continue;
      const key: [number, number] = [s[SERVING] ? 1 : 0, s.bytesRead / age];
      if (bestKey === undefined || key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) {
        best = s;
        bestKey = key;
      }
    }
    if (best) return best;
  }
  return undefined;
}

/**
 * Close a request whose body arrives too slowly (slow-body attacks that stay under the idle
 * timeout): after `bodyGraceMs`, every `bodyRateWindowMs` the body must have brought
 * `minBodyBytesPerWindow` bytes, unless the node itself is not reading (bytes wait in its
 * buffers: the node is the slow side then). A body with a Content-Length must be complete
 * within bodyGraceMs + length / (minBodyBytesPerWindow per window).
 */
function guardBodyRate(req: IncomingMessage, limits: HttpLimits): void {
  const length = Number(req.headers['content-length'] ?? '0');
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!(length > 0) && !chunked) return;
  const socket = req.socket;
  const start = Date.now();
  let last = socket.bytesRead;
  const window = Math.max(1, limits.bodyRateWindowMs);
  const cut = () => {
    stop();
    socket.destroy();
  };
  const tick = setInterval(() => {
    if (req.complete || socket.destroyed) return stop();
    const read = socket.bytesRead;
    const got = read - last;
    last = read;
    if (Date.now() - start < limits.bodyGraceMs) return;
    const nodeIsSlowSide = req.readableLength > 0 || socket.readableLength > 0;
    if (!nodeIsSlowSide && got < limits.minBodyBytesPerWindow) cut();
  }, window);
  tick.unref();
  let deadline: NodeJS.Timeout | undefined;
  if (length > 0 && limits.minBodyBytesPerWindow > 0) {
    const ms = limits.bodyGraceMs + Math.ceil((length / limits.minBodyBytesPerWindow) * window);
    if (ms < 2 ** 31 - 1) {
      deadline = setTimeout(() => {
        if (!req.complete) cut();
      }, ms);
      deadline.unref();
    }
  }
  const stop = () => {
    clearInterval(tick);
    if (deadline) clearTimeout(deadline);
  };
  req.once('end', stop);
  req.once('close', stop);
}

/**
 * Apply the connection limits to a server: header deadline, idle timeout instead of a fixed
 * whole-request deadline, a minimum body transfer rate after a grace (with a whole-body deadline
 * derived from the declared length), a per-IP socket cap answered with 429, and a global socket
 * cap enforced by eviction: when the node is full, a new connection closes the slowest connection
 * of the network prefix (/24, /64) holding the most, so a few addresses cannot hold every slot
 * (refused with 503 when none can be closed). Call before listen().
 */
export function applyHttpLimits(server: Server, limits: HttpLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  // No fixed whole-request deadline: a large upload at a steady rate must finish; the idle timeout
  // cuts stalls and guardBodyRate cuts trickles.
  server.requestTimeout = 0;
  server.keepAliveTimeout = Math.min(5_000, limits.idleTimeoutMs);
  // The cap is enforced below by eviction, not by refusing every connection once full.
  server.maxConnections = limits.maxConnections * 2;
  server.setTimeout(limits.idleTimeoutMs, (socket: Socket) => socket.destroy());
  server.on('request', (req: IncomingMessage) => guardBodyRate(req, limits));
  server.on('clientError', answerClientError(server, limits));
  // Node answers an Expect it does not know with a bare 417 unless someone listens here.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify({
      error: {
        code: 'E_INVALID_INPUT',
        message: 'the Expect header may only be 100-continue; send the request without it',
      },
    });
    res.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
    req.resume();
  });
  const perIp = new Map<string, number>();
  const groups = new Map<string, Map<TrackedSocket, SocketInfo>>();
  let open = 0;
  server.on('connection', (socket: TrackedSocket) => {
    // Keyed like every per-IP limit: one IPv6 /64 is one client (clientKey).
    const ip = clientKey(socket.remoteAddress ?? 'unknown');
    const prefix = ipPrefix(ip);
    const n = (perIp.get(ip) ?? 0) + 1;
    perIp.set(ip, n);
    open++;
    const group = groups.get(prefix) ?? new Map<TrackedSocket, SocketInfo>();
    groups.set(prefix, group);
    const now = Date.now();
    group.set(socket, { since: now, prefix });
    socket.once('close', () => {
      open--;
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
      group.delete(socket);
      if (group.size === 0 && groups.get(prefix) === group) groups.delete(prefix);
    });
    if (n > limits.maxConnectionsPerIp) {
      socket.end(
        rawJsonError(
          429,
          'Too Many Requests',
          'E_RATE_LIMITED',
          `too many open connections from this address (IPv6: from its /64; limit ${limits.maxConnectionsPerIp})`,
        ),
      );
      return;
    }
    if (open > limits.maxConnections) {
      const victim = pickVictim(groups, socket, now);
      if (victim) victim.destroy();
      else
        socket.end(
          rawJsonError(
            503,
            'Service Unavailable',
            'E_UNAVAILABLE',
            'the node has no free connection; retry shortly',
          ),
        );
    }
  });
}

/** Error for a refused request, with the seconds to wait (sent as Retry-After). */
export function rateLimited(message: string, retryAfterSeconds = 1): FirnError {
  return new FirnError('E_RATE_LIMITED', message, { details: { retryAfterSeconds } });
}

/**
 * Per-client request rate (a fixed window per second, rate-limiter-flexible's memory limiter).
 * `take(ip)` counts the request under `clientKey(ip)` (an IPv6 client's whole /64) and throws
 * E_RATE_LIMITED (HTTP 429, Retry-After) when that client is over its rate.
 */
export class RequestRateLimiter {
  private readonly limiter: RateLimiterMemory;

  constructor(readonly perSecond: number) {
    this.limiter = new RateLimiterMemory({ points: Math.max(1, perSecond), duration: 1 });
  }

  async take(ip: string): Promise<void> {
    try {
      await this.limiter.consume(clientKey(ip), 1);
    } catch (e) {
      if (e instanceof RateLimiterRes)
        throw rateLimited(
          `too many requests from this address (IPv6: from its /64; limit ${this.perSecond}/s)`,
          Math.max(1, Math.ceil(e.msBeforeNext / 1000)),
        );
      throw e;
    }
  }
}

/**
 * Lift the idle timeout while the node itself works on a request whose body is fully read (a
 * chain transaction, a model load) or streams events that may pause: the client is not the one
 * stalling then. Node's HTTP server restores the socket timeout for the next request on the
 * connection.
 */
export function holdWhileServing(req: IncomingMessage): void {
  const socket = req.socket as TrackedSocket;
  socket.setTimeout(0);
  // Evicted last when the node is full; the next request on this connection is a client's again.
  socket[SERVING] = true;
  req.once('close', () => {
    delete socket[SERVING];
  });
}

/**
 * Write `text` (a refusal) on a socket the HTTP server handed over for an upgrade, end it, and
 * destroy it 1 s later whether the peer closes or not: the server no longer times such a socket
 * out and keeps it half-open, so a peer that never closes its side would hold it for ever.
 */
export function endUpgradedSocket(socket: Duplex, text: string): void {
  socket.end(text);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** The remote IP of a request (the socket's; no forwarding header is trusted). */
export function remoteIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** The client a request counts under for per-IP limits: `clientKey` of its remote IP. */
export function remoteClient(req: IncomingMessage): string {
  return clientKey(remoteIp(req));
}

/** One request waiting for a place (FairInFlightCap). */
interface Waiter {
  client: string;
  seq: number;
  grant: () => void;
  /** Leave the queue refused with `error` (its place was taken by a newcomer). */
  refuse: (error: FirnError) => void;
}

/**
 * A cap on work in flight over all clients (attestations), shared fairly between clients
 * (decision 1740): at most `max` places over all clients and `perClient` per client (a
 * `clientKey`: IPv4 address, IPv6 /64). A request that finds no place it may take waits, at most
 * `maxWaitingPerClient` per client and `maxWaiting` in all, for `maxWaitMs`; a freed place goes
 * to the waiting request whose client holds the fewest places (the oldest among equals), so a
 * client holding none is served before another request of a client holding some. When every
 * waiting place is taken, a client holding none and waiting for none takes the first waiting place
 * of the client with the most held and waiting (that client's youngest waiting request is refused
 * 429), so the queue is shared fairly too. Waiting
 * happens here, at the HTTP edge: the enclave never has more than `max` of this work queued.
 * Refusals are E_RATE_LIMITED (429, Retry-After 1).
 */
export class FairInFlightCap {
  private held = 0;
  private readonly perClientHeld = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  private seq = 0;

  constructor(
    readonly max: number,
    /** Places one client may hold at once (clamped to 1..max). */
    readonly perClient: number,
    /** What is counted, for the refusal (e.g. "attestations"). */
    readonly what: string,
    readonly waits: { maxWaitingPerClient: number; maxWaiting: number; maxWaitMs: number } = {
      maxWaitingPerClient: 2,
      maxWaiting: 64,
      maxWaitMs: 5_000,
    },
  ) {}

  /** Places taken now, over all clients. */
  get inFlight(): number {
    return this.held;
  }

  /** Requests waiting for a place now. */
  get queued(): number {
    return this.waiting.length;
  }

  private get cap(): number {
    return Math.max(1, this.max);
  }

  private get share(): number {
    return Math.min(this.cap, Math.max(1, this.perClient));
  }

  /**
   * Take a place for `client` (any string; `clientKey` of the remote IP on the API), waiting for
   * one as the class says. Resolves to the release function (idempotent); rejects with
   * E_RATE_LIMITED when the client already has its waiting requests, every waiting place is
   * taken, or no place came within `maxWaitMs`.
   */
  enter(client: string): Promise<() => void> {
    const mine = this.perClientHeld.get(client) ?? 0;
    if (this.waiting.length === 0 && this.held < this.cap && mine < this.share)
      return Promise.resolve(this.take(client));
    const waitingMine = this.waiting.filter((w) => w.client === client).length;
    if (waitingMine >= this.waits.maxWaitingPerClient && mine >= this.share)
      return Promise.reject(
        rateLimited(
          `this address (IPv6: its /64) already has ${mine} ${this.what} in progress and ${waitingMine} waiting; retry shortly`,
        ),
      );
    // A full queue is shared fairly too (decision 1740, amended): a client holding nothing and
    // waiting for nothing takes a waiting place from the client with the most held and waiting.
    const place =
      this.waiting.length >= this.waits.maxWaiting && mine === 0 && waitingMine === 0
        ? this.displace()
        : undefined;
    if (
      place === undefined &&
      (waitingMine >= this.waits.maxWaitingPerClient || this.waiting.length >= this.waits.maxWaiting)
    )
      return Promise.reject(
        rateLimited(`the node is producing ${this.max} ${this.what} already; retry shortly`),
      );
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        client,
        seq: place ?? this.seq++,
        grant: () => {
          clearTimeout(timer);
          resolve(this.take(client));
        },
        refuse: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(
          rateLimited(
            `the node is producing ${this.max} ${this.what} already and none ended within ${this.waits.maxWaitMs} ms; retry shortly`,
          ),
        );
      }, this.waits.maxWaitMs);
      timer.unref?.();
      this.waiting.push(waiter);
      this.dispatch();
    });
  }

  /**
   * Free a waiting place for a newcomer holding nothing: the client with the most places held
   * plus requests waiting (ties: the one first in line) loses its youngest waiting request, which
   * is refused 429; the newcomer gets that client's first place in line and the client's other
   * waiting requests move back one. Returns the newcomer's `seq`, or undefined when no client has
   * two or more requests (a swap of equals would gain nothing).
   */
  private displace(): number | undefined {
    const load = new Map<string, number>();
    const first = new Map<string, number>();
    for (const w of this.waiting) {
      bump(load, w.client, 1);
      first.set(w.client, Math.min(first.get(w.client) ?? w.seq, w.seq));
    }
    let victim: string | undefined;
    let most = 0;
    for (const [c, n] of load) {
      const total = n + (this.perClientHeld.get(c) ?? 0);
      if (total > most || (total === most && first.get(c)! < first.get(victim!)!)) {
        victim = c;
        most = total;
      }
    }
    // A client with one request in all would only trade places with the newcomer.
    if (victim === undefined || most < 2) return undefined;
    const theirs = this.waiting.filter((w) => w.client === victim).sort((a, b) => a.seq - b.seq);
    const seqs = theirs.map((w) => w.seq);
    const youngest = theirs[theirs.length - 1]!;
    this.waiting.splice(this.waiting.indexOf(youngest), 1);
    for (let i = 0; i < theirs.length - 1; i++) theirs[i]!.seq = seqs[i + 1]!;
    youngest.refuse(
      rateLimited(
        `the node is producing ${this.max} ${this.what} and its waiting places went to an address holding none; retry shortly`,
      ),
    );
    return seqs[0];
  }

  private take(client: string): () => void {
    this.held++;
    bump(this.perClientHeld, client, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
      bump(this.perClientHeld, client, -1);
      this.dispatch();
    };
  }

  /** Give free places to waiting requests: fewest places held by their client first, then oldest. */
  private dispatch(): void {
    while (this.held < this.cap && this.waiting.length > 0) {
      let best = -1;
      let bestHeld = Number.POSITIVE_INFINITY;
      for (let i = 0; i < this.waiting.length; i++) {
        const w = this.waiting[i]!;
        const h = this.perClientHeld.get(w.client) ?? 0;
        if (h >= this.share) continue;
        if (h < bestHeld || (h === bestHeld && w.seq < this.waiting[best]!.seq)) {
          best = i;
          bestHeld = h;
        }
      }
      if (best < 0) return;
      const [w] = this.waiting.splice(best, 1);
      w!.grant();
    }
  }
}

/**
 * What an upload in progress tells its slot, so that the slot can be taken back for a newcomer
 * (UploadSlots' eviction).
 */
export interface UploadHolder {
  /** Body bytes received since the slot was taken. */
  received(): number;
  /**
   * The slot was taken back (it is free already): answer the upload 429 naming `reason` and close
   * it. Returns false when the upload can no longer be evicted (its body is complete); the slot is
   * then given back to it and another is chosen.
   */
  evict(reason: string): boolean;
}

/** When an upload may lose its slot to a newcomer (HttpLimits; decision 1660). */
export interface UploadEviction {
  /** Held its slot at least this long, ms. */
  minAgeMs: number;
  /** Averaged under this many body bytes per second since it took its slot. */
  keepBytesPerSecond: number;
}

interface HeldSlot {
  key: string;
  prefix: string | undefined;
  since: number;
  holder: UploadHolder | undefined;
  released: boolean;
}

/**
 * Concurrency slots for uploads: over all uploaders, per uploader address and per source network
 * (`ipPrefix`). `tryAcquire` never waits: a full slot is E_RATE_LIMITED (429) at once, so a slow
 * uploader cannot queue others behind it. With `eviction`, a newcomer that finds every slot held
 * takes one back from the slowest evictable upload (held at least `minAgeMs`, averaging under
 * `keepBytesPerSecond`), chosen from the network holding the most slots, as the connection
 * eviction does: a few trickled bodies cannot hold every slot while others wait (decision 1660).
 */
export class UploadSlots {
  private readonly held = new Set<HeldSlot>();
  private readonly perAddress = new Map<string, number>();
  private readonly perPrefix = new Map<string, number>();

  constructor(
    readonly maxTotal: number,
    readonly maxPerAddress: number,
    /** Uploads at once from one network prefix (see `ipPrefix`); default: no cap. */
    readonly maxPerPrefix = Number.POSITIVE_INFINITY,
    /** When a held slot may be taken back for a newcomer; default: never. */
    readonly eviction?: UploadEviction,
    /** Clock, ms (tests pass their own). */
    private readonly now: () => number = Date.now,
  ) {}

  /** Uploads holding a slot now. */
  get inProgress(): number {
    return this.held.size;
  }

  /**
   * Take a slot for `address` (the signed uploader) from `prefix` (its network, `ipPrefix`);
   * `holder` makes the upload evictable (see the class). Throws E_RATE_LIMITED when the address
   * or the network holds its share, or every slot is held and none can be taken back. Returns
   * the release function (idempotent).
   */
  tryAcquire(address: string, prefix?: string, holder?: UploadHolder): () => void {
    const key = address.toLowerCase();
    if (prefix !== undefined && (this.perPrefix.get(prefix) ?? 0) >= this.maxPerPrefix)
      throw rateLimited(`uploads from this network already hold ${this.maxPerPrefix} slots; retry shortly`);
    if ((this.perAddress.get(key) ?? 0) >= Math.max(1, this.maxPerAddress))
      throw rateLimited(`this address already has ${this.maxPerAddress} uploads in progress`);
    if (this.held.size >= Math.max(1, this.maxTotal) && !this.evictOne())
      throw rateLimited(`the node has ${this.maxTotal} uploads in progress; retry shortly`);
    const slot: HeldSlot = { key, prefix, since: this.now(), holder, released: false };
    this.held.add(slot);
    bump(this.perAddress, key, 1);
    if (prefix !== undefined) bump(this.perPrefix, prefix, 1);
    return () => this.release(slot);
  }

  private release(slot: HeldSlot): void {
    if (slot.released) return;
    slot.released = true;
    this.held.delete(slot);
    bump(this.perAddress, slot.key, -1);
    if (slot.prefix !== undefined) bump(this.perPrefix, slot.prefix, -1);
  }

  /** Take back one slot (see the class); false when none may be. */
  private evictOne(): boolean {
    const ev = this.eviction;
    if (ev === undefined) return false;
    const now = this.now();
    const candidates: { slot: HeldSlot; group: number; rate: number }[] = [];
    for (const slot of this.held) {
      const age = now - slot.since;
      if (slot.holder === undefined || age < Math.max(1, ev.minAgeMs)) continue;
      const rate = (slot.holder.received() * 1000) / age;
      // NaN (no byte count) is never judged slow.
      if (!(rate < ev.keepBytesPerSecond)) continue;
      const group = slot.prefix === undefined ? 1 : (this.perPrefix.get(slot.prefix) ?? 1);
      candidates.push({ slot, group, rate });
    }
    candidates.sort((a, b) => b.group - a.group || a.rate - b.rate);
    for (const { slot, rate } of candidates) {
      this.release(slot);
      const reason =
        `this upload was evicted: the node's ${this.maxTotal} upload slots were full, another upload waited, ` +
        `and this one was the slowest of its network (${Math.round(rate)} bytes/s since it started; ` +
        `uploads under ${ev.keepBytesPerSecond} bytes/s may be evicted then); retry it`;
      if (slot.holder!.evict(reason)) return true;
      // Its body is complete: it keeps its slot.
      slot.released = false;
      this.held.add(slot);
      bump(this.perAddress, slot.key, 1);
      if (slot.prefix !== undefined) bump(this.perPrefix, slot.prefix, 1);
    }
    return false;
  }
}

/** Add `by` to `key`'s count, dropping the key at 0. */
function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}
