import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FirnError, type GpuEvidenceEntry, readBodyCapped, TooLargeError } from '@firn/core';
import { LRUCache } from 'lru-cache';
import pRetry, { AbortError } from 'p-retry';
import { pemToDerList } from './certChain.ts';
import { deviceModelOf } from './deviceModel.ts';
import { isNvSwitch } from './evaluateGpu.ts';
import { parseSpdmReport } from './parseSpdmReport.ts';
import { createRimStore, MAX_RIM_BYTES, type RimStore } from './verifyRim.ts';

/** NVIDIA's RIM service (GET /v1/rim/{id}); any mirror serving the same API works. */
export const NVIDIA_RIM_SERVICE_URL = 'https://rim.attestation.nvidia.com';
/** A RIM service answer larger than this is refused (a RIM is under 1 MiB; base64 adds a third). */
const MAX_RIM_RESPONSE_BYTES = Math.ceil((MAX_RIM_BYTES * 4) / 3) + 64 * 1024;
/** RIM ids are letters, digits, '_', '.', '-' (e.g. NV_GPU_DRIVER_GH100_550.90.07). */
const RIM_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface RimServiceOptions {
  /** Service base URL (default NVIDIA's). */
  baseUrl?: string;
  /** A folder of RIMs named `<id>.xml` or `<id>.swidtag` (NVIDIA's filesystem RIM store layout), read before any request. */
  offlineDir?: string;
  /** Keep fetched RIMs here as `<id>.xml` (RIMs never change under an id). */
  cacheDir?: string;
  fetch?: typeof fetch;
  /** One attempt's time limit, ms (default 10 000). */
  timeoutMs?: number;
  /** Attempts after the first on a network error, timeout, 408, 429 or 5xx (default 3). */
  retries?: number;
  /** First backoff delay, ms, doubling with jitter (default 250). */
  minRetryDelayMs?: number;
  /** Extra request headers (e.g. a service key); never logged. */
  headers?: Record<string, string>;
  /** In-memory cache capacity, RIMs (default 128). */
  cacheEntries?: number;
}

/** A RIM as served: the id it was asked for, its XML text, and where it came from (for messages). */
export interface FetchedRim {
  id: string;
  xml: string;
  source: string;
}

export interface RimServiceClient {
  readonly baseUrl: string;
  /**
   * The RIM with this id, from memory, the offline folder, the cache folder or the service. The RIM
   * is NOT trusted: verifyRim checks its signature and chain when evidence is verified. Errors:
   * E_INVALID_INPUT (bad id), E_NOT_FOUND (the service has no such RIM), E_UNAVAILABLE (unreachable,
   * timed out, refused, after retries), E_TOO_LARGE, E_EVIDENCE_COLLATERAL (an answer for another
   * id, a digest that does not match, undecodable content), E_UNSUPPORTED (a format other than
   * SWID tags); each names the id and the service URL.
   */
  getRim(id: string): Promise<FetchedRim>;
  /**
   * A RimStore holding the driver and VBIOS (or switch BIOS) RIMs named by each entry's signed SPDM
   * opaque data and the device model its certificate chain names (never its `arch` label), for
   * verifyGpuEvidenceList. RIMs the service does not have are listed in
   * `missing` (the verifier then reports measurements as unchecked); other failures are thrown.
   */
  rimStoreFor(entries: readonly GpuEvidenceEntry[]): Promise<RimStore & { missing: string[] }>;
}

/** The driver RIM id for a GPU architecture and driver version (NVIDIA's naming). */
export function driverRimId(arch: string, driverVersion: string): string {
  const a = arch.toUpperCase();
  if (a === 'HOPPER') return `NV_GPU_DRIVER_GH100_${driverVersion}`;
  if (a === 'BLACKWELL') return `NV_GPU_CC_DRIVER_GB100_${driverVersion}`;
  throw new FirnError('E_UNSUPPORTED', `no driver RIM naming for architecture ${arch}`);
}

/**
 * The VBIOS RIM id (GPU) or switch BIOS RIM id (NVSwitch): project, project SKU, chip SKU and the
 * version without dots, upper case, e.g. NV_GPU_VBIOS_1010_0200_882_96009F0001.
 */
export function vbiosRimId(
  arch: string,
  r: { project: string; projectSku: string; chipSku: string; vbiosVersion: string },
): string {
  const v = r.vbiosVersion.replaceAll('.', '').toUpperCase();
  const prefix = isNvSwitch(arch) ? 'NV_SWITCH_BIOS' : 'NV_GPU_VBIOS';
  return `${prefix}_${r.project}_${r.projectSku}_${r.chipSku}_${v}`.toUpperCase();
}

const transient = (s: number) => s === 408 || s === 429 || s >= 500;

/**
 * Create a client for NVIDIA's RIM service (`GET {base}/v1/rim/{id}` answering `{id, rim: base64,
 * sha256, rim_format, last_updated, request_id}`, as NVIDIA's attestation SDK reads it), with an
 * offline folder, memory and disk caches, timeouts and retries with backoff.
 */
export function createRimServiceClient(opts: RimServiceOptions = {}): RimServiceClient {
  const base = (opts.baseUrl ?? NVIDIA_RIM_SERVICE_URL).replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new FirnError('E_INVALID_INPUT', `RIM service URL is not a URL: ${base}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new FirnError('E_INVALID_INPUT', 'RIM service URL must be http(s)');
  if (u.username !== '' || u.password !== '')
    throw new FirnError('E_INVALID_INPUT', 'put credentials in headers, not in the RIM service URL');
  const doFetch = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const mem = new LRUCache<string, FetchedRim>({ max: opts.cacheEntries ?? 128 });
  const inflight = new Map<string, Promise<FetchedRim>>();

  async function readLocal(dir: string, id: string, what: string): Promise<FetchedRim | undefined> {
    for (const ext of ['.xml', '.swidtag']) {
      const p = join(dir, `${id}${ext}`);
      const st = await stat(p).catch(() => undefined);
      if (st === undefined || !st.isFile()) continue;
      if (st.size > MAX_RIM_BYTES) throw new TooLargeError(`RIM ${id}`, st.size, MAX_RIM_BYTES);
      return { id, xml: await readFile(p, 'utf8'), source: `${what}:${id}${ext}` };
    }
    return undefined;
  }

  async function attempt(url: string, id: string): Promise<Uint8Array> {
    let res: Response;
    try {
      res = await doFetch(url, {
        headers: { accept: 'application/json', ...opts.headers },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw new FirnError(
        'E_UNAVAILABLE',
        `RIM service ${timedOut ? `did not answer within ${timeoutMs} ms` : 'is unreachable'} (${url})`,
        { cause: e },
      );
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      if (res.status === 404)
        throw new AbortError(new FirnError('E_NOT_FOUND', `RIM ${id} is not published (${url})`));
      const err = new FirnError(
        'E_UNAVAILABLE',
        `RIM service answered ${res.status}${res.status === 401 || res.status === 403 ? ' (check the service key)' : ''} (${url})`,
      );
      if (transient(res.status)) throw err;
      throw new AbortError(err);
    }
    try {
      return await readBodyCapped(res, MAX_RIM_RESPONSE_BYTES, 'RIM service response');
    } catch (e) {
      if (e instanceof TooLargeError)
        throw new AbortError(new FirnError('E_TOO_LARGE', `${e.message} (${url})`, { cause: e }));
      throw new FirnError('E_UNAVAILABLE', `RIM service response broke off (${url})`, { cause: e });
    }
  }

  function decode(body: Uint8Array, id: string, url: string): string {
    const bad = (m: string) => new FirnError('E_EVIDENCE_COLLATERAL', `RIM service: ${m} (${url})`);
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
    } catch {
      throw bad('answer is not JSON');
    }
    if (typeof o !== 'object' || o === null) throw bad('answer is not an object');
    if (o.id !== id) throw bad(`answer is for ${String(o.id).slice(0, 128)}, not ${id}`);
    if (o.rim_format !== undefined && String(o.rim_format).toUpperCase() !== 'SWIDTAG')
      throw new FirnError(
        'E_UNSUPPORTED',
        `RIM ${id} is in format ${String(o.rim_format).slice(0, 32)}; only SWID tags are verified`,
      );
    if (typeof o.rim !== 'string' || !/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(o.rim))
      throw bad('rim must be base64');
    const rim = Buffer.from(o.rim, 'base64');
    if (rim.length > MAX_RIM_BYTES) throw new TooLargeError(`RIM ${id}`, rim.length, MAX_RIM_BYTES);
    // A transfer check only: the RIM's own XML signature is what is trusted, later.
    const digest = createHash('sha256').update(rim).digest('hex');
    if (typeof o.sha256 !== 'string' || o.sha256.toLowerCase() !== digest)
      throw bad(`sha256 of RIM ${id} does not match`);
    return rim.toString('utf8');
  }

  async function fetchRim(id: string): Promise<FetchedRim> {
    if (opts.offlineDir !== undefined) {
      const r = await readLocal(opts.offlineDir, id, 'offline');
      if (r !== undefined) return r;
    }
    if (opts.cacheDir !== undefined) {
      const r = await readLocal(opts.cacheDir, id, 'cache');
      if (r !== undefined) return r;
    }
    const url = `${base}/v1/rim/${encodeURIComponent(id)}`;
    const body = await pRetry(() => attempt(url, id), {
      retries: opts.retries ?? 3,
      minTimeout: opts.minRetryDelayMs ?? 250,
      factor: 2,
      randomize: true,
    });
    const xml = decode(body, id, url);
    if (opts.cacheDir !== undefined) {
      await mkdir(opts.cacheDir, { recursive: true });
      const p = join(opts.cacheDir, `${id}.xml`);
      const tmp = `${p}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, xml);
      await rename(tmp, p);
    }
    return { id, xml, source: `rim-service:${id}` };
  }

  const client: RimServiceClient = {
    baseUrl: base,
    async getRim(id) {
      if (typeof id !== 'string' || !RIM_ID.test(id))
        throw new FirnError('E_INVALID_INPUT', 'RIM id must be letters, digits, _ . -');
      const hit = mem.get(id);
      if (hit !== undefined) return hit;
      let p = inflight.get(id);
      if (p === undefined) {
        p = fetchRim(id).finally(() => inflight.delete(id));
        inflight.set(id, p);
      }
      const r = await p;
      mem.set(id, r);
      return r;
    },
    async rimStoreFor(entries) {
      const ids = new Set<string>();
      for (const e of entries) {
        const report = parseSpdmReport(new Uint8Array(Buffer.from(String(e.evidence), 'base64')));
        // Which RIMs apply depends on what the device is: its certificate chain says, not the
        // host's arch label (decision 1767). A model not known here gets no RIM (it is refused).
        const model = deviceModelOf(
          pemToDerList(Buffer.from(String(e.certificate), 'base64').toString('latin1')),
        );
        if (model.kind === 'unknown') continue;
        if (model.kind === 'gpu' && report.driverVersion !== undefined)
          ids.add(driverRimId(model.arch, report.driverVersion));
        const { project, projectSku, chipSku, vbiosVersion } = report;
        if (project && projectSku && chipSku && vbiosVersion)
          ids.add(vbiosRimId(model.arch, { project, projectSku, chipSku, vbiosVersion }));
      }
      const results = await Promise.allSettled([...ids].map((id) => client.getRim(id)));
      const items: FetchedRim[] = [];
      const missing: string[] = [];
      for (const [i, r] of results.entries()) {
        if (r.status === 'fulfilled') items.push(r.value);
        else if (r.reason instanceof FirnError && r.reason.code === 'E_NOT_FOUND') missing.push([...ids][i]!);
        else throw r.reason;
      }
      return Object.assign(createRimStore(items), { missing });
    },
  };
  return client;
}
