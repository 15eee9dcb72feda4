import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { FirnError, type ErrorCode } from '@firn/core';
import { encodeFrame, FrameDecoder, PROTOCOL_VERSION } from '@firn/enclave';
import type { Logger } from './logger.ts';

export interface EnclaveSupervisorOptions {
  bundlePath: string;
  env: Record<string, string>;
  logger: Logger;
  /** Per-request timeout, ms. */
  requestTimeoutMs?: number;
  /** Restart the enclave when it dies (default true). */
  restart?: boolean;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

/**
 * Runs the enclave program as a child process and speaks the framed protocol with it. The host
 * sees only what the enclave returns: public keys, quotes, sealed blobs and ciphertext.
 */
export class EnclaveSupervisor extends EventEmitter {
  private child: ChildProcess | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private stopping = false;
  private readonly opts: EnclaveSupervisorOptions;
  restarts = 0;

  constructor(opts: EnclaveSupervisorOptions) {
    super();
    this.opts = opts;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const child = spawn(process.execPath, [this.opts.bundlePath], {
      env: { PATH: process.env.PATH ?? '', ...this.opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    const dec = new FrameDecoder();
    child.stdout!.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = dec.push(chunk);
      } catch (e) {
        this.opts.logger.error('enclave protocol error', { code: (e as FirnError).code });
        child.kill('SIGKILL');
        return;
      }
      for (const f of frames) this.onFrame(f);
    });
    let errBuf = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      errBuf += chunk.toString('utf8');
      let i = errBuf.indexOf('\n');
      while (i >= 0) {
        const line = errBuf.slice(0, i);
        errBuf = errBuf.slice(i + 1);
        this.relayLog(line);
        i = errBuf.indexOf('\n');
      }
      if (errBuf.length > 65536) errBuf = '';
    });
    child.on('exit', (code, signal) => {
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new FirnError('E_ENCLAVE_UNAVAILABLE', 'enclave exited'));
      }
      this.pending.clear();
      this.child = undefined;
      this.emit('exit', { code, signal });
      if (!this.stopping && this.opts.restart !== false) {
        this.restarts++;
        this.opts.logger.warn('enclave exited; restarting', { code, signal, restarts: this.restarts });
        setTimeout(
          () => {
            if (!this.stopping) {
              this.start();
              this.emit('restarted');
            }
          },
          Math.min(5000, 200 * this.restarts),
        );
      }
    });
  }

  private relayLog(line: string): void {
    // Enclave logs are JSON lines; they are re-emitted under the host's logger, fields preserved.
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      this.opts.logger.info(String(o.msg ?? 'enclave'), { enclave: true, level: o.level, ...o });
    } catch {
      this.opts.logger.info('enclave output', { enclave: true, line: line.slice(0, 500) });
    }
  }

  private onFrame(f: unknown): void {
    const r = f as {
      v?: number;
      id?: number;
      result?: unknown;
      error?: { code: ErrorCode; message: string };
      event?: string;
      data?: unknown;
    };
    if (r.v !== PROTOCOL_VERSION || typeof r.id !== 'number') return;
    if (r.id === 0 && typeof r.event === 'string') {
      this.emit('event', r.event, r.data);
      return;
    }
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.error) p.reject(new FirnError(r.error.code, r.error.message));
    else p.resolve(r.result);
  }

  async call<T = unknown>(
    method: string,
    params: Record<string, unknown> = {},
    timeoutMs?: number,
  ): Promise<T> {
    const child = this.child;
    if (!child?.stdin || child.exitCode !== null)
      throw new FirnError('E_ENCLAVE_UNAVAILABLE', 'enclave is not running');
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          reject(new FirnError('E_TIMEOUT', `enclave call ${method} timed out`));
        },
        timeoutMs ?? this.opts.requestTimeoutMs ?? 30_000,
      );
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      child.stdin!.write(encodeFrame({ v: PROTOCOL_VERSION, id, method, params }));
    });
  }

  /** Wait until the (re)started enclave answers hello. */
  async ready(timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.call('hello', {}, 2000);
        return;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin?.end();
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    });
  }
}
