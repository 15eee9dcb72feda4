import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { FirnError } from '@firn/core';
import { Sema } from 'async-sema';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

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
  /** Mutating requests (uploads, job and session submissions, attestations) per IP per second. Default 50. */
  mutatingRequestsPerSecondPerIp: number;
  /** Uploads in progress over all uploaders; more get 429. Default 8. */
  maxConcurrentUploads: number;
  /** Uploads in progress per uploader address; more get 429. Default 2. */
  maxConcurrentUploadsPerAddress: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  maxConnections: 512,
  maxConnectionsPerIp: 64,
  mutatingRequestsPerSecondPerIp: 50,
  maxConcurrentUploads: 8,
  maxConcurrentUploadsPerAddress: 2,
});

/** The JSON error body of the API as raw HTTP/1.1, for a socket refused before any request is parsed. */
function rawJsonError(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * Apply the connection limits to a server: header deadline, idle timeout instead of a whole-request
 * deadline, a global socket cap, and a per-IP socket cap answered with 429. Call before listen().
 */
export function applyHttpLimits(server: Server, limits: HttpLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  // No whole-request deadline: a large upload at a steady rate must finish; the idle timeout cuts stalls.
  server.requestTimeout = 0;
  server.keepAliveTimeout = Math.min(5_000, limits.idleTimeoutMs);
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleTimeoutMs, (socket: Socket) => socket.destroy());
  const perIp = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    const n = (perIp.get(ip) ?? 0) + 1;
    perIp.set(ip, n);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left <= 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    if (n > limits.maxConnectionsPerIp)
      socket.end(
        rawJsonError(
          429,
          'Too Many Requests',
          'E_RATE_LIMITED',
          `too many open connections from this address (limit ${limits.maxConnectionsPerIp})`,
        ),
      );
  });
}

/** Error for a refused request, with the seconds to wait (sent as Retry-After). */
export function rateLimited(message: string, retryAfterSeconds = 1): FirnError {
  return new FirnError('E_RATE_LIMITED', message, { details: { retryAfterSeconds } });
}

/**
 * Per-key request rate (a fixed window per second, rate-limiter-flexible's memory limiter).
 * `take` throws E_RATE_LIMITED (HTTP 429, Retry-After) when the key is over its rate.
 */
export class RequestRateLimiter {
  private readonly limiter: RateLimiterMemory;

  constructor(readonly perSecond: number) {
    this.limiter = new RateLimiterMemory({ points: Math.max(1, perSecond), duration: 1 });
  }

  async take(key: string): Promise<void> {
    try {
      await this.limiter.consume(key, 1);
    } catch (e) {
      if (e instanceof RateLimiterRes)
        throw rateLimited(
          `too many requests from this address (limit ${this.perSecond}/s)`,
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
  req.socket.setTimeout(0);
}

/** The remote IP of a request (the socket's; no forwarding header is trusted). */
export function remoteIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * Concurrency slots for uploads: one global semaphore and one per uploader address (async-sema).
 * `tryAcquire` never waits: a full slot is E_RATE_LIMITED (429) at once, so a slow uploader cannot
 * queue others behind it. Returns the release function.
 */
export class UploadSlots {
  private readonly global: Sema;
  private readonly perAddress = new Map<string, { sema: Sema; held: number }>();

  constructor(
    readonly maxTotal: number,
    readonly maxPerAddress: number,
  ) {
    this.global = new Sema(Math.max(1, maxTotal));
  }

  tryAcquire(address: string): () => void {
    const key = address.toLowerCase();
    let entry = this.perAddress.get(key);
    if (!entry) {
      entry = { sema: new Sema(Math.max(1, this.maxPerAddress)), held: 0 };
      this.perAddress.set(key, entry);
    }
    if (entry.sema.tryAcquire() === undefined) {
      if (entry.held === 0) this.perAddress.delete(key);
      throw rateLimited(`this address already has ${this.maxPerAddress} uploads in progress`);
    }
    if (this.global.tryAcquire() === undefined) {
      entry.sema.release();
      if (entry.held === 0) this.perAddress.delete(key);
      throw rateLimited(`the node has ${this.maxTotal} uploads in progress; retry shortly`);
    }
    entry.held++;
    const e = entry;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.global.release();
      e.sema.release();
      e.held--;
      if (e.held === 0) this.perAddress.delete(key);
    };
  }
}
