import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import {
  assertNonce,
  DEFAULT_OUTPUT_BOUND_BYTES,
  type EvidenceBundle,
  FirnError,
  hexBytes,
  MAX_JOB_INPUTS,
  MAX_OUTPUT_BOUND_BYTES,
} from '@firn/core';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { JobService } from '../jobs/jobApi.ts';
import type { JobHost } from '../jobs/jobHost.ts';
import { MAX_JOB_BODY_BYTES } from '../jobs/submission.ts';
import type { Logger } from '../logger.ts';
import type { NodeMetrics } from '../metrics.ts';
import { OPENAPI_DOCUMENT } from '../openapi.ts';
import {
  DEFAULT_HTTP_LIMITS,
  endUpgradedSocket,
  FairInFlightCap,
  RequestRateLimiter,
  rawJsonError,
  remoteClient,
} from './limits.ts';
import { answerError, readJsonText, sendJson } from './router.ts';
import { SharedHealthCheck } from './sharedHealth.ts';

/** Largest POST /v1/attestation body, bytes. */
export const ATTESTATION_BODY_LIMIT = 4096;

/** What the node API serves from (NodeDaemon implements it; the API never imports the daemon). */
export interface NodeApiHost extends JobHost {
  readonly opts: { readonly dataDir: string; readonly logger: Logger; readonly chain?: unknown };
  readonly url: string;
  readonly chainStatus: string;
  /** Why the registration is stuck and the way out, while it is (registration.ts); shown by GET /v1/node. */
  readonly registrationNotice?: string | undefined;
  readonly metrics: NodeMetrics;
  /** The job service (absent on a chain node whose database cannot be opened: 507). */
  readonly jobs: JobService | undefined;
  health(): Promise<{ ok: boolean }>;
  attest(nonce: Uint8Array): Promise<EvidenceBundle>;
}

type Env = { Bindings: HttpBindings; Variables: { route: string; status: number } };

/** The raw Node request and response a handler streams with (uploads, downloads, SSE, relay). */
interface Raw {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /**
   * A HEAD request (Hono runs the GET handler for it): a handler that writes the raw response
   * answers the headers alone and reads nothing (no file, no event, no output).
   */
  head: boolean;
}

const HEX32_RE = /^0x[0-9a-fA-F]{64}$/;
const hex32 = (what: string) =>
  z.string().regex(HEX32_RE, `${what} must be 32 bytes as 0x-prefixed hex (64 hex digits)`);
const IdParams = z.object({
  id: hex32('id').openapi({ param: { name: 'id', in: 'path' }, example: `0x${'ab'.repeat(32)}` }),
});
/** POST /v1/jobs and POST /v1/sessions body (checked again by parseSubmitBody). */
export const JobSubmissionSchema = z
  .object({
    jobId: hex32('jobId'),
    enc: z.string().regex(HEX32_RE, 'enc must be the 32-byte HPKE encapsulated key as hex'),
    ciphertext: z
      .string()
      .max(MAX_JOB_BODY_BYTES)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'ciphertext must be base64'),
    inputs: z
      .array(hex32('input artifact id'))
      .min(1, `inputs must list 1..${MAX_JOB_INPUTS} artifact ids`)
      .max(MAX_JOB_INPUTS, `inputs must list 1..${MAX_JOB_INPUTS} artifact ids`),
    maxOutputBytes: z
      .number()
      .int()
      .min(DEFAULT_OUTPUT_BOUND_BYTES)
      .max(MAX_OUTPUT_BOUND_BYTES)
      .optional()
      .openapi({
        description:
          "jobs only: the most storage the job's sealed outputs may take (each rounded up to 4096-byte blocks), bytes; reserved against the quotas before the claim, enforced by the enclave; default one block (decision 1690)",
      }),
  })
  .openapi('JobSubmission');
const AttestationRequest = z
  .object({
    nonce: z
      .string()
      .regex(/^0x([0-9a-fA-F]{2}){16,64}$/, 'nonce must be 16..64 bytes as 0x-prefixed hex')
      .openapi({ description: '16..64 bytes hex' }),
  })
  .openapi('AttestationRequest');
const EventsQuery = z.object({
  after: z
    .string()
    .regex(/^-?\d{1,9}$/, 'Last-Event-ID (or ?after=) must be an event seq number')
    .optional()
    .openapi({ param: { name: 'after', in: 'query' }, type: 'integer', minimum: -1 }),
});

type Method = 'get' | 'post' | 'put' | 'delete';
type Doc = {
  summary?: string;
  description?: string;
  responses: Record<string, unknown>;
  parameters?: unknown[];
};
/** The hand-written words of an operation (summary, response descriptions, header parameters). */
function docOf(path: string, method: Method): Doc {
  const p = (OPENAPI_DOCUMENT.paths as unknown as Record<string, Partial<Record<Method, Doc>>>)[path]?.[
    method
  ];
  if (!p) throw new Error(`openapi.ts has no words for ${method.toUpperCase()} ${path}`);
  return p;
}

/**
 * A 4xx the framework raised itself (Hono's HTTPException, e.g. @hono/zod-openapi's 415 for a
 * Content-Type it does not match) is the caller's mistake: the same FirnError the handlers throw.
 */
function callerError(e: unknown): unknown {
  if (!(e instanceof HTTPException) || e.status < 400 || e.status >= 500) return e;
  const code = e.status === 415 ? 'E_UNSUPPORTED' : e.status === 413 ? 'E_TOO_LARGE' : 'E_INVALID_INPUT';
  return new FirnError(
    code,
    e.status === 415 ? 'send this body as application/json' : e.message || 'invalid request',
  );
}

/** The OpenAPI `{param}` path of a Hono `:param` path, and back. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z]+)/g, '{$1}');

/**
 * The node API (docs/api.md) as a Hono app: every route is declared once with @hono/zod-openapi,
 * which validates its path, query and JSON body (400 E_INVALID_INPUT with the first issue) and
 * generates its OpenAPI 3.1 entry, served at GET /v1/openapi.json. Handlers that stream (uploads,
 * downloads, SSE, the session relay) write to the raw Node response, so no body is buffered whole;
 * errors are answered by `answerError` (one table from code to status). Requests are counted in
 * `host.metrics` by declared route and status (499 for a request the client aborted).
 */
export function createNodeApi(host: NodeApiHost): OpenAPIHono<Env> {
  const log = host.opts.logger;
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = issue?.path.length ? ` (${issue.path.join('.')})` : '';
        throw new FirnError('E_INVALID_INPUT', `${issue?.message ?? 'invalid request'}${where}`);
      }
    },
  });
  const declared: { method: string; pattern: RegExp }[] = [];

  // Counting and the one error table. The route label is the declared path, set before validation.
  app.use('*', async (c, next) => {
    const t0 = performance.now();
    c.set('route', 'unmatched');
    try {
      // A malformed %-escape anywhere in the path is the caller's error (400), never a 500.
      try {
        decodeURIComponent(new URL(c.env.incoming.url ?? '/', 'http://localhost').pathname);
      } catch {
        throw new FirnError('E_INVALID_INPUT', 'malformed percent-escape or request target in the path');
      }
      await next();
    } catch (e) {
      c.set('status', answerError(c.env.incoming, c.env.outgoing, callerError(e), log, c.get('route')));
      c.res = RESPONSE_ALREADY_SENT;
    } finally {
      const res = c.env.outgoing;
      const status = c.get('status') ?? (res.headersSent ? res.statusCode : c.res.status);
      host.metrics.httpRequest(
        c.env.incoming.method ?? 'GET',
        c.get('route'),
        status,
        (performance.now() - t0) / 1000,
      );
    }
  });
  app.onError((e, c) => {
    c.set('status', answerError(c.env.incoming, c.env.outgoing, callerError(e), log, c.get('route')));
    return RESPONSE_ALREADY_SENT;
  });
  app.notFound((c) => {
    const path = c.req.path;
    const other = declared.some((d) => d.pattern.test(path));
    const status = other ? 405 : 404;
    c.set('status', status);
    sendJson(c.env.outgoing, status, {
      error: other
        ? { code: 'E_INVALID_INPUT', message: 'method not allowed' }
        : { code: 'E_NOT_FOUND', message: 'no such route' },
    });
    return RESPONSE_ALREADY_SENT;
  });

  /** Declare one route: its words from openapi.ts, its schemas here, its handler on the raw response. */
  function route<
    P extends z.ZodObject | undefined,
    Q extends z.ZodObject | undefined,
    B extends z.ZodType | undefined,
  >(
    method: Method,
    path: string,
    spec: {
      params?: P;
      query?: Q;
      json?: B;
      rawBody?: { contentType: string; schema: Record<string, unknown> };
      /** Runs before validation: the rate limit and the capped body read. */
      before?: MiddlewareHandler<Env>;
    },
    handler: (raw: Raw, c: Context<Env>) => unknown,
  ): void {
    const doc = docOf(openApiPath(path), method);
    const label: MiddlewareHandler<Env> = async (c, next) => {
      c.set('route', path);
      await next();
    };
    const requestBody = spec.json
      ? { required: true, content: { 'application/json': { schema: spec.json } } }
      : spec.rawBody
        ? { required: true, content: { [spec.rawBody.contentType]: { schema: spec.rawBody.schema } } }
        : undefined;
    const r = createRoute({
      method,
      path: openApiPath(path),
      ...(doc.summary === undefined ? {} : { summary: doc.summary }),
      ...(doc.description === undefined ? {} : { description: doc.description }),
      middleware: spec.before ? [label, spec.before] : [label],
      request: {
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.query ? { query: spec.query } : {}),
        ...(requestBody ? { body: requestBody } : {}),
      },
      // biome-ignore lint/suspicious/noExplicitAny: the hand-written response objects are OpenAPI 3.1 already
      responses: doc.responses as any,
    });
    declared.push({
      method: method.toUpperCase(),
      pattern: new RegExp(`^${path.replace(/:([A-Za-z]+)/g, '[^/]+')}$`),
    });
    // biome-ignore lint/suspicious/noExplicitAny: the handler answers on the raw response (RESPONSE_ALREADY_SENT)
    app.openapi(r as any, async (c: Context<Env>) => {
      const req = c.env.incoming;
      const res = c.env.outgoing;
      const out = await handler(
        { req, res, url: new URL(req.url ?? '/', 'http://localhost'), head: req.method === 'HEAD' },
        c,
      );
      if (!res.headersSent && out !== undefined) sendJson(res, 200, out);
      return RESPONSE_ALREADY_SENT;
    });
  }

  /** Rate limit, then read the JSON body capped at `limit` (413/415/400), for the validator. */
  const readJsonFirst =
    (limit: number, guard?: () => void): MiddlewareHandler<Env> =>
    async (c, next) => {
      guard?.();
      await host.rateLimiter.take(remoteClient(c.env.incoming));
      const text = await readJsonText(c.env.incoming, limit);
      // The validator reads the body through Hono's cache: give it the text already read and
      // parsed (never stringified again: a body nested deep enough would overflow the stack).
      (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve(text);
      await next();
    };
  const jobs = (): JobService => {
    if (!host.jobs)
      throw new FirnError('E_STORAGE_FULL', "the node's storage cannot be written; it takes no jobs now");
    return host.jobs;
  };
  const idOf = (c: Context<Env>) => (c.req.valid as (t: 'param') => { id: string })('param').id;
  // Public reads that make the node work (a database read, file reads, a stream) have a rate per
  // client of their own (HttpLimits.readRequestsPerSecondPerIp, decision 1744).
  const reads = new RequestRateLimiter(
    host.limits.readRequestsPerSecondPerIp ?? DEFAULT_HTTP_LIMITS.readRequestsPerSecondPerIp,
  );
  const readRate: MiddlewareHandler<Env> = async (c, next) => {
    await reads.take(remoteClient(c.env.incoming));
    await next();
  };

  // Each part separately; 503 when any is down, so a load balancer stops sending jobs here. One
  // check (an enclave hello, a database write) at most every healthRefreshMs, shared by every
  // request, and the read rate per client: a stranger looping here queues nothing in front of the
  // jobs and sessions in the enclave pipe (decision 1761).
  const health = new SharedHealthCheck(
    () => host.health(),
    host.limits.healthRefreshMs ?? DEFAULT_HTTP_LIMITS.healthRefreshMs,
  );
  route('get', '/healthz', { before: readRate }, async ({ res }) => {
    const h = await health.get();
    sendJson(res, h.ok ? 200 : 503, h);
    return undefined;
  });
  route('get', '/metrics', { before: readRate }, async ({ res }) => {
    const text = await host.metrics.render();
    res.writeHead(200, { 'content-type': host.metrics.contentType });
    res.end(text);
    return undefined;
  });
  route('get', '/v1/node', { before: readRate }, () => ({
    ...host.identity,
    endpoint: host.url,
    status: host.chainStatus,
    ...(host.registrationNotice === undefined ? {} : { notice: host.registrationNotice }),
    version: '0.1.0',
  }));
  // Over all clients (a per-client rate alone lets many networks together queue quotes without
  // bound in front of every job and session call through the enclave pipe), shared fairly: one
  // client holding every place would refuse the verifiers re-checking this node (decision 1740).
  const attestations = new FairInFlightCap(
    host.limits.maxAttestationsInFlight ?? DEFAULT_HTTP_LIMITS.maxAttestationsInFlight,
    host.limits.maxAttestationsInFlightPerClient ?? DEFAULT_HTTP_LIMITS.maxAttestationsInFlightPerClient ?? 2,
    'attestations',
  );
  route(
    'post',
    '/v1/attestation',
    { json: AttestationRequest, before: readJsonFirst(ATTESTATION_BODY_LIMIT) },
    async (_raw, c) => {
      const { nonce } = (c.req.valid as (t: 'json') => { nonce: string })('json');
      const bytes = assertNonce(hexBytes(nonce, 'nonce', undefined, 64));
      const leave = await attestations.enter(remoteClient(c.env.incoming));
      try {
        return await host.attest(bytes);
      } finally {
        leave();
      }
    },
  );
  // Made once, on the first request (every route is declared by then): a stranger's loop on it
  // costs a JSON answer, not a document generation each time.
  let openApi: Record<string, unknown> | undefined;
  route('get', '/v1/openapi.json', { before: readRate }, () => {
    openApi ??= nodeOpenApiDocument(app);
    return openApi;
  });

  if (host.opts.chain === undefined) return app;
  // The job API needs the chain (claim, proof, fail); a serve-only node has attestation alone.
  route(
    'put',
    '/v1/artifacts',
    {
      rawBody: { contentType: 'application/octet-stream', schema: { type: 'string', format: 'binary' } },
      before: async (_c, next) => {
        jobs();
        await next();
      },
    },
    ({ req, res }) => jobs().upload(req, res),
  );
  route('get', '/v1/artifacts/:id', { params: IdParams, before: readRate }, ({ res, head }, c) =>
    jobs().download(idOf(c), res, head),
  );
  route(
    'post',
    '/v1/jobs',
    { json: JobSubmissionSchema, before: readJsonFirst(MAX_JOB_BODY_BYTES, jobs) },
    ({ req, res }, c) => jobs().submit(req, res, c.req.valid('json' as never)),
  );
  route('get', '/v1/jobs/:id', { params: IdParams, before: readRate }, (_raw, c) => jobs().status(idOf(c)));
  route(
    'get',
    '/v1/jobs/:id/events',
    { params: IdParams, query: EventsQuery, before: readRate },
    ({ req, res, url, head }, c) => jobs().stream(idOf(c), req, res, url, head),
  );
  route('get', '/v1/jobs/:id/result', { params: IdParams, before: readRate }, ({ res, head }, c) =>
    jobs().result(idOf(c), res, head),
  );
  route(
    'post',
    '/v1/sessions',
    { json: JobSubmissionSchema, before: readJsonFirst(MAX_JOB_BODY_BYTES, jobs) },
    ({ req }, c) => jobs().sessions.openSession(req, c.req.valid('json' as never)),
  );
  route(
    'post',
    '/v1/sessions/:id/requests',
    {
      params: IdParams,
      rawBody: {
        contentType: 'application/octet-stream',
        schema: { type: 'string', format: 'binary', maxLength: 8388608 },
      },
      // Counted on arrival, before the session, its token or the message header is looked at: a
      // stranger guessing tokens spends its own session rate (decision 1761).
      before: async (c, next) => {
        await host.sessionRateLimiter.take(remoteClient(c.env.incoming));
        await next();
      },
    },
    ({ req, res }, c) => jobs().sessions.request(idOf(c), req, res),
  );
  route(
    'delete',
    '/v1/sessions/:id',
    {
      params: IdParams,
      // A mutating route like the others: junk closes from a stranger never flood the enclave.
      before: async (c, next) => {
        await host.rateLimiter.take(remoteClient(c.env.incoming));
        await next();
      },
    },
    ({ req }, c) => jobs().sessions.closeRequest(idOf(c), req),
  );
  return app;
}

/**
 * The server's `upgrade` listener: GET /v1/sessions/{id}/stream with `Upgrade: firn-session/1`
 * becomes the session's binary stream (SessionService.stream, docs/decisions/1240); any other
 * upgrade is answered 404 and closed.
 */
export function sessionStreamUpgrade(
  host: Pick<NodeApiHost, 'jobs'>,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const pattern = /^\/v1\/sessions\/([^/?#]+)\/stream(?:\?.*)?$/;
  return (req, socket, head) => {
    socket.on('error', () => undefined);
    const m = pattern.exec(req.url ?? '');
    if (m === null) {
      // Node hands every request with an Upgrade offer here (curl --http2 sends `Upgrade: h2c`):
      // refused naming the header, never a bare 404 on a route that exists.
      endUpgradedSocket(
        socket,
        rawJsonError(
          400,
          'Bad Request',
          'E_UNSUPPORTED',
          `this node upgrades only GET /v1/sessions/{id}/stream (Upgrade: firn-session/1); send this request without an Upgrade header (got ${JSON.stringify(String(req.headers.upgrade ?? '').slice(0, 40))})`,
        ),
      );
      return;
    }
    if (req.method !== 'GET' || host.jobs === undefined) {
      endUpgradedSocket(
        socket,
        req.method !== 'GET'
          ? rawJsonError(405, 'Method Not Allowed', 'E_INVALID_INPUT', 'method not allowed')
          : rawJsonError(404, 'Not Found', 'E_NOT_FOUND', 'this node takes no sessions (it has no job API)'),
      );
      return;
    }
    void host.jobs.sessions.stream(m[1]!, req, socket, head).catch(() => socket.destroy());
  };
}

/**
 * The OpenAPI 3.1 document of `app`, generated from its route declarations, with the shared
 * components and the header parameters that the handlers check themselves (signatures, upload
 * intents: they cover the body, so they are verified after it is read, not by a validator).
 */
export function nodeOpenApiDocument(app: OpenAPIHono<Env>): Record<string, unknown> {
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: OPENAPI_DOCUMENT.info,
  }) as unknown as {
    paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>>;
    components?: { schemas?: Record<string, unknown> };
  };
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops)) {
      const words = docOf(path, method as Method);
      const headers = ((words.parameters ?? []) as { in: string; name: string }[]).filter(
        (p) =>
          p.in === 'header' && !(op.parameters ?? []).some((q) => q.in === 'header' && q.name === p.name),
      );
      if (headers.length > 0) op.parameters = [...(op.parameters ?? []), ...headers];
    }
  doc.components = {
    ...doc.components,
    schemas: { ...OPENAPI_DOCUMENT.components.schemas, ...doc.components?.schemas },
  };
  return doc as unknown as Record<string, unknown>;
}
