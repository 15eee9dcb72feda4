import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The recorded PCS vectors shipped with this package (see vectors/pcs/README.md). */
export const PCS_VECTORS_DIR = fileURLToPath(new URL('../../vectors/pcs/', import.meta.url));

/** One recorded case: the quote, the time its SOURCE.md says to verify at, and the expected verdict. */
export const PCS_VECTORS = {
  sgx: {
    dir: join(PCS_VECTORS_DIR, 'sgx-00606a000000'),
    now: 1755236700,
    status: 'SWHardeningNeeded',
    advisoryIds: ['INTEL-SA-00615'],
    nextUpdate: Date.parse('2025-09-14T04:36:46Z') / 1000,
  },
  tdx: {
    dir: join(PCS_VECTORS_DIR, 'tdx-00806f050000'),
    now: 1749095100,
    status: 'OutOfDate',
    advisoryIds: ['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986'],
    nextUpdate: Date.parse('2025-07-04T09:19:31Z') / 1000,
  },
  tdxSprE4: {
    dir: join(PCS_VECTORS_DIR, 'tdx-50806f000000'),
    now: Date.parse('2023-07-01T01:00:00Z') / 1000,
    status: undefined,
    advisoryIds: [],
    nextUpdate: Date.parse('2023-07-08T07:27:52Z') / 1000,
  },
} as const;

export interface LocalPcsOptions {
  /** Vector folders to serve (one TCB info per FMSPC, one QE identity per TEE, one CRL per CA). */
  dirs: readonly string[];
  /** How CRLs are sent: DER (PCS with encoding=der, PCCS), PEM (PCS default), hex (older PCCS). */
  crlEncoding?: 'der' | 'pem' | 'hex';
  /** Name of the TCB info issuer-chain header (PCS v4: TCB-Info-Issuer-Chain; v3/PCCS: SGX-…). */
  tcbInfoChainHeader?: string;
  /** Port to listen on (default: any free port). */
  port?: number;
}

/** A running local PCS and the knobs tests turn to inject faults. */
export interface LocalPcs {
  url: string;
  /** Every request path with its query, in order. */
  hits: string[];
  /** Answer the next N requests with 503. */
  failNext: number;
  /** Delay every answer by this many ms. */
  delayMs: number;
  /** Replace a response body (path without query → body) for tamper tests. */
  override: Map<string, Buffer>;
  /** Replace a response's headers (path without query → headers) for tamper tests. */
  overrideHeaders: Map<string, Record<string, string>>;
  /** Answer every request with this status when set. */
  forceStatus: number | undefined;
  close(): Promise<void>;
}

interface Served {
  body: Buffer;
  headers: Record<string, string>;
}

/**
 * A PCS-compatible HTTP server on 127.0.0.1 that serves REAL recorded Intel responses (TCB info, QE
 * identity, PCK CRL, root CA CRL) with their issuer-chain headers, the way Intel's PCS API v4 and
 * PCCS do. Not covered: TLS, Intel's subscription keys, PCK certificate endpoints, redirects.
 */
export async function startLocalPcs(opts: LocalPcsOptions): Promise<LocalPcs> {
  const routes = new Map<string, Served>();
  const add = (key: string, s: Served) => {
    const prev = routes.get(key);
    if (prev !== undefined && !prev.body.equals(s.body))
      throw new Error(`two vectors serve ${key} differently`);
    routes.set(key, s);
  };
  const crl = (der: Buffer): Buffer => {
    if (opts.crlEncoding === 'pem') {
      const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
      return Buffer.from(`-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----\n`);
    }
    if (opts.crlEncoding === 'hex') return Buffer.from(der.toString('hex'));
    return der;
  };
  for (const dir of opts.dirs) {
    const headers = JSON.parse(readFileSync(join(dir, 'headers.json'), 'utf8')) as Record<
      'tcb' | 'qe' | 'pckcrl',
      Record<string, string>
    >;
    const tcbBody = readFileSync(join(dir, 'tcb.json'));
    const tcb = (JSON.parse(tcbBody.toString('utf8')) as { tcbInfo: { id: string; fmspc: string } }).tcbInfo;
    const tee = tcb.id === 'TDX' ? 'tdx' : 'sgx';
    const tcbHeaders = { ...headers.tcb };
    if (opts.tcbInfoChainHeader !== undefined) {
      const v = Object.values(tcbHeaders)[0]!;
      for (const k of Object.keys(tcbHeaders)) delete tcbHeaders[k];
      tcbHeaders[opts.tcbInfoChainHeader] = v;
    }
    add(`/${tee}/certification/v4/tcb?fmspc=${tcb.fmspc.toUpperCase()}`, {
      body: tcbBody,
      headers: { ...tcbHeaders, 'content-type': 'application/json' },
    });
    add(`/${tee}/certification/v4/qe/identity`, {
      body: readFileSync(join(dir, 'qe-identity.json')),
      headers: { ...headers.qe, 'content-type': 'application/json' },
    });
    const pckDer = readFileSync(join(dir, 'pckcrl.der'));
    const ca = pckDer.includes(Buffer.from('Platform')) ? 'platform' : 'processor';
    add(`/sgx/certification/v4/pckcrl?ca=${ca}`, {
      body: crl(pckDer),
      headers: { ...headers.pckcrl, 'content-type': 'application/pkix-crl' },
    });
    add('/sgx/certification/v4/rootcacrl', {
      body: crl(readFileSync(join(dir, 'rootcacrl.der'))),
      headers: { 'content-type': 'application/pkix-crl' },
    });
  }

  const state = {
    hits: [] as string[],
    failNext: 0,
    delayMs: 0,
    override: new Map<string, Buffer>(),
    overrideHeaders: new Map<string, Record<string, string>>(),
    forceStatus: undefined as number | undefined,
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://pcs.local');
    state.hits.push(u.pathname + u.search);
    if (state.forceStatus !== undefined) {
      res.writeHead(state.forceStatus).end();
      return;
    }
    if (state.failNext > 0) {
      state.failNext--;
      res.writeHead(503, { 'retry-after': '0' }).end('{"error":"service unavailable"}');
      return;
    }
    let key = u.pathname;
    if (u.pathname.endsWith('/tcb')) key += `?fmspc=${(u.searchParams.get('fmspc') ?? '').toUpperCase()}`;
    if (u.pathname.endsWith('/pckcrl')) key += `?ca=${u.searchParams.get('ca') ?? ''}`;
    const s = routes.get(key);
    if (s === undefined) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, state.overrideHeaders.get(u.pathname) ?? s.headers)
      .end(state.override.get(u.pathname) ?? s.body);
  };
  const server: Server = createServer((req, res) => {
    if (state.delayMs > 0) setTimeout(() => handle(req, res), state.delayMs);
    else handle(req, res);
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(state, {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/** The quote of a vector folder. */
export function vectorQuote(dir: string): Uint8Array {
  return new Uint8Array(readFileSync(join(dir, 'quote.dat')));
}
