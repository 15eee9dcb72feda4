/**
 * The words of the node API's OpenAPI 3.1 document (docs/api.md): summaries, response
 * descriptions, header parameters and shared components. The served document is generated from
 * the route declarations in http/nodeApi.ts (nodeOpenApiDocument), which take their words from here;
 * a route with no words here fails at startup.
 */
import { JOB_RECORD_STATUSES } from './storage/jobRecord.ts';

const hex32 = { type: 'string', pattern: '^0x[0-9a-fA-F]{64}$' };
const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
};
const errorBody = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
const errors = {
  '400': { description: 'Invalid input', content: errorBody },
  '404': { description: 'Not found', content: errorBody },
};
/** The public reads' own rate per client (HttpLimits.readRequestsPerSecondPerIp; docs/api.md, "Limits"). */
const readErrors = {
  '429': {
    description:
      'Too many reads from this address (E_RATE_LIMITED; IPv6: from its /64; default 200 a second); see Retry-After',
    headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } },
    content: errorBody,
  },
};
/** One listed output of a job (storage/jobRecord.ts outputs; jobs/publicJobView.ts). */
const outputRef = {
  type: 'object',
  required: ['role', 'artifactId', 'contentType', 'size'],
  additionalProperties: false,
  properties: {
    role: { type: 'string' },
    artifactId: { ...hex32, description: 'SHA-256 of the sealed artifact; GET /v1/artifacts/{id} serves it' },
    contentType: { type: 'string' },
    size: { type: 'integer', minimum: 0, description: 'sealed size, bytes' },
  },
};
/** Statuses of the routes that read a body and are rate limited (docs/api.md, "Limits"). */
const bodyErrors = {
  '413': { description: 'Body over its size cap (E_TOO_LARGE)', content: errorBody },
  '415': {
    description:
      'Wrong Content-Type (E_UNSUPPORTED): JSON only as application/json, uploads only as application/octet-stream',
    content: errorBody,
  },
  '429': {
    description: 'Too many requests or connections from this address (E_RATE_LIMITED); see Retry-After',
    headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } },
    content: errorBody,
  },
};
/** Refusals of a job or session before the node claims it (docs/api.md, "Job policy and pre-flight"). */
const claimErrors = {
  '403': {
    description:
      'Valid signature from an address that may not do this (E_FORBIDDEN), or a job outside the operator’s terms: escrow under the minimum, or a claim timeout / time to deadline under the minimum claim time (E_POLICY_REJECTED)',
    content: errorBody,
  },
};
/** Statuses of the routes that need a signed request (docs/api.md, "Who may call"). */
const authErrors = {
  '401': {
    description: 'Missing, malformed, expired or non-verifying credential (E_UNAUTHENTICATED)',
    content: errorBody,
  },
  '403': {
    description: 'Valid signature from an address that may not do this (E_FORBIDDEN)',
    content: errorBody,
  },
};
const signature = {
  name: 'x-firn-signature',
  in: 'header',
  required: true,
  schema: { type: 'string', pattern: '^0x[0-9a-fA-F]{130}$' },
  description:
    '65-byte secp256k1 signature (r || s || v) over the tagged digest of the request (packages/crypto/src/nodeAuth.ts)',
};

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'firn node API',
    version: '1',
    description:
      'A firn node host: attestation, sealed artifacts, encrypted jobs. The host sees ciphertext only; every request body is size-capped.',
  },
  paths: {
    '/healthz': {
      get: {
        summary:
          'Health of the enclave, the storage and the chain, each on its own ({ok, enclave, storage, chain: {up, block, clockSkewSeconds, lastSeenSecondsAgo, error?}, jobs: {active}}), from one check made at most once a second (limits.healthRefreshMs) and shared by every request',
        responses: {
          '200': { description: 'All parts up' },
          '503': { description: 'A part is down (same body, ok: false)' },
          ...readErrors,
        },
      },
    },
    '/metrics': {
      get: {
        summary:
          'Prometheus metrics (text format 0.0.4): HTTP requests by declared route and status (499: client closed the request) and their durations, jobs by outcome and their durations, attestations by result, enclave restarts, enclave/chain/storage up, chain head lag and clock skew, active jobs',
        responses: {
          '200': {
            description: 'Prometheus text exposition',
            content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } },
          },
          ...readErrors,
        },
      },
    },
    '/v1/node': {
      get: {
        summary:
          'Node identity and registration status; `notice` (only while it holds) says why a Pending registration cannot pass any more and the way out (decision 1761)',
        responses: { '200': { description: 'Identity' }, ...readErrors },
      },
    },
    '/v1/attestation': {
      post: {
        summary: 'Evidence bound to a caller-chosen nonce',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['nonce'],
                properties: { nonce: { type: 'string', description: '16..64 bytes hex' } },
              },
            },
          },
        },
        responses: { '200': { description: 'Evidence bundle' }, ...errors, ...bodyErrors },
      },
    },
    '/v1/artifacts': {
      put: {
        summary:
          'Upload a sealed artifact (streamed, size-capped) under a signed upload intent from an address with a balance on chain; the bytes must hash to the intent’s artifact id. Counts against the uploader’s and the node’s disk quotas.',
        parameters: [
          signature,
          {
            name: 'x-firn-uploader',
            in: 'header',
            required: true,
            schema: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' },
            description: 'the address that signed the intent; it must hold a balance at the latest block',
          },
          {
            name: 'x-firn-artifact-id',
            in: 'header',
            required: true,
            schema: hex32,
            description: 'SHA-256 of the body (the artifact id)',
          },
          {
            name: 'x-firn-intent-expires',
            in: 'header',
            required: true,
            schema: { type: 'integer' },
            description: 'unix seconds; in the future and at most 3600 s ahead of the node’s clock',
          },
          {
            name: 'content-length',
            in: 'header',
            required: true,
            schema: { type: 'integer' },
            description: 'exact body size (signed in the intent); chunked bodies are refused',
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        responses: {
          '201': {
            description: 'Stored',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/ArtifactRef' } } },
          },
          '200': {
            description: 'Already stored (never overwritten)',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/ArtifactRef' } } },
          },
          ...errors,
          ...authErrors,
          ...bodyErrors,
          '413': {
            description:
              'Over the per-artifact size cap (E_TOO_LARGE), or over the uploader’s or the node’s disk quota (E_QUOTA_EXCEEDED)',
            content: errorBody,
          },
          '429': {
            description:
              'Too many requests from this IP, or too many uploads in flight for this uploader or this node (E_RATE_LIMITED)',
            headers: { 'Retry-After': { schema: { type: 'integer' } } },
            content: errorBody,
          },
        },
      },
    },
    '/v1/artifacts/{id}': {
      get: {
        summary: 'Download a sealed artifact',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': { description: 'Sealed bytes', content: { 'application/octet-stream': {} } },
          ...errors,
          ...readErrors,
        },
      },
    },
    '/v1/jobs': {
      post: {
        summary:
          'Submit an HPKE-encrypted job request for a job posted on chain; only the job’s on-chain requester may (signature over the route, chain, job market, Enclave ID and the whole body)',
        parameters: [signature],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/JobSubmission' } } },
        },
        responses: {
          '202': {
            description:
              'Accepted; once it has an enclave slot the enclave pre-flights it (opens the request, checks it against the chain and the grants) and only then the node claims and runs it. A request refused by the pre-flight ends as status failed with its code (E_DECRYPT, E_JOB_INVALID, E_GRANT_*), never claimed',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/JobRecord' } } },
          },
          '409': {
            description:
              'Job not Open, or already submitted here with another body (the same body again answers 202 with the current record and never runs the job twice)',
          },
          '507': { description: 'The node’s disk is full (E_STORAGE_FULL)', content: errorBody },
          ...errors,
          ...authErrors,
          ...claimErrors,
          ...bodyErrors,
          '404': {
            description: 'No such job on chain, or an input artifact not stored here',
            content: errorBody,
          },
        },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        summary: 'Job status, error code if failed, output artifact ids and proof',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': {
            description: 'Job record (the public view: documented fields only)',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/JobRecord' } } },
          },
          ...errors,
          ...readErrors,
        },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        summary:
          'Server-sent events (docs/decisions/1040): `progress` (id = seq; data {seq, message: base64 channel event}, seq 0, 1, 2…) then `end` (data {status, events: count, error?}); resumable with Last-Event-ID or ?after=seq; replayed after a node restart',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: hex32 },
          { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: -1 } },
          { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'integer', minimum: -1 } },
        ],
        responses: {
          '200': { description: 'Event stream', content: { 'text/event-stream': {} } },
          '429': {
            description:
              'Too many event streams open from this address, or too many reads from it (E_RATE_LIMITED); see Retry-After',
            headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } },
            content: errorBody,
          },
          ...errors,
        },
      },
    },
    '/v1/jobs/{id}/result': {
      get: {
        summary:
          'Sealed outputs (each listed; the first ones inline as base64 `sealed` while they fit 64 KiB in all, the others fetched with GET /v1/artifacts/{id}), the channel response and the signed Work Proof; for an inference session, `session` (salt, count, requestsHash, responsesHash: the preimage of the proof’s outputCommitment) and no outputs. Public (ciphertext only): verifiers fetch it to check the result is available and matches the proof, and dispute when it is not.',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': {
            description: 'Result',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/JobResult' } } },
          },
          '409': { description: 'Not finished' },
          '422': { description: 'Job failed' },
          ...errors,
          ...readErrors,
          '404': {
            description:
              'No such job here, or its outputs were deleted: they are kept until the job is final plus the output retention (retention.outputSeconds, default 7 days; docs/decisions/1603)',
            content: errorBody,
          },
        },
      },
    },
    '/v1/sessions': {
      post: {
        summary:
          'Open a warm inference session for a job of kind inference-session posted on chain: the node claims it and the enclave verifies the model grant and loads the model once. Signed by the job’s on-chain requester, as POST /v1/jobs.',
        parameters: [
          signature,
          {
            name: 'x-firn-session-direct',
            in: 'header',
            required: false,
            schema: { type: 'string', enum: ['1'] },
            description:
              'Ask to connect to the session’s runtime directly (docs/decisions/1310): the answer’s `direct` names a TCP port on this host and the token its first frame must carry',
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/JobSubmission' } } },
        },
        responses: {
          '200': {
            description: 'Session open',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/SessionOpened' } } },
          },
          '409': { description: 'Job not Open, already submitted here, or session already open' },
          '422': {
            description:
              'The enclave’s pre-flight refused the open request before any claim (E_DECRYPT, E_CHANNEL_SEQUENCE); nothing recorded',
            content: errorBody,
          },
          '503': {
            description:
              'No free session slot in the enclave (E_UNAVAILABLE), found before any claim: nothing recorded, no gas spent; retry later',
            content: errorBody,
          },
          ...errors,
          ...authErrors,
          ...claimErrors,
          ...bodyErrors,
        },
      },
    },
    '/v1/sessions/{id}/requests': {
      post: {
        summary:
          'One inference request: the body is a binary session message (sealed with the session keys, strictly increasing sequence number); the response is the sealed output message. The host relays bytes only.',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: hex32 },
          {
            name: 'x-firn-session-token',
            in: 'header',
            required: true,
            schema: { type: 'string', maxLength: 64 },
            description: "the session's transport token from the open answer (accessToken)",
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/octet-stream': { schema: { type: 'string', format: 'binary', maxLength: 8388608 } },
          },
        },
        responses: {
          '401': {
            description:
              'No or a wrong x-firn-session-token (E_UNAUTHENTICATED); refused before the body is read',
            content: errorBody,
          },
          '200': {
            description: 'Sealed response message',
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          '413': { description: 'Request over 8 MiB' },
          '415': { description: 'Not application/octet-stream (E_UNSUPPORTED)', content: errorBody },
          '422': {
            description:
              'Replayed, reordered or altered message (E_CHANNEL_SEQUENCE, E_DECRYPT). A message whose clear header is not the session’s next request is refused by the host from its first 26 bytes, before the rest is read or queued (the connection is closed)',
          },
          '429': {
            description:
              'Per-IP session request rate exceeded (counted on arrival, before the token and the header are checked), or the session already has 2 requests at the enclave (E_RATE_LIMITED)',
            headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } },
            content: errorBody,
          },
          ...errors,
        },
      },
    },
    '/v1/sessions/{id}': {
      delete: {
        summary:
          'Close the session: the enclave checks the sealed close message, signs one Work Proof for the session and the node submits it on chain. Without the session token or a valid close message nothing changes (401).',
        parameters: [
          { name: 'id', in: 'path', required: true, schema: hex32 },
          {
            name: 'x-firn-session-token',
            in: 'header',
            required: true,
            schema: { type: 'string', maxLength: 64 },
            description: "the session's transport token from the open answer (accessToken)",
          },
          {
            name: 'x-firn-session-auth',
            in: 'header',
            required: true,
            schema: { type: 'string', maxLength: 1024 },
            description:
              'base64 session message: the tag firn/session-close/v1 sealed under the session request key with the next sequence number',
          },
        ],
        responses: {
          '200': {
            description: 'Closed',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/SessionClosed' } } },
          },
          '401': {
            description:
              'No or a wrong x-firn-session-token (refused before anything reaches the enclave), no close message, or one that does not open under the session keys (E_UNAUTHENTICATED); the session stays open and keeps serving',
            content: errorBody,
          },
          '409': { description: 'The session is already closing', content: errorBody },
          ...errors,
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI document' }, ...readErrors },
      },
    },
  },
  components: {
    schemas: {
      Error: error,
      ArtifactRef: {
        type: 'object',
        required: ['id', 'size'],
        properties: { id: hex32, size: { type: 'integer' } },
      },
      JobSubmission: {
        type: 'object',
        required: ['jobId', 'enc', 'ciphertext', 'inputs'],
        properties: {
          jobId: hex32,
          enc: hex32,
          ciphertext: { type: 'string', description: 'base64 channel request message (at most 2 MiB)' },
          inputs: {
            type: 'array',
            items: hex32,
            minItems: 1,
            maxItems: 16,
            description: 'input artifact ids in order (public: the on-chain input commitment covers them)',
          },
        },
      },
      SessionOpened: {
        type: 'object',
        required: ['sessionId', 'salt', 'expiresAt', 'response'],
        properties: {
          sessionId: hex32,
          salt: { ...hex32, description: 'fresh per open; mixed into the session keys (public)' },
          expiresAt: { type: 'integer', description: 'unix seconds; the model grant expiry' },
          response: {
            type: 'string',
            description: "base64 channel response sealed to the requester: the model's tensor names",
          },
          accessToken: {
            type: 'string',
            description:
              "the session's transport token (base64url, 32 bytes): send it as x-firn-session-token on every request and stream of this session",
          },
          direct: {
            type: 'object',
            required: ['port', 'token'],
            description:
              'present when x-firn-session-direct was asked and the runtime serves it: connect over TCP to this host at `port`, first frame (u32 BE length 33, tag 2) the 32-byte `token`; frames as on GET .../stream (docs/decisions/1310)',
            properties: { port: { type: 'integer' }, token: hex32 },
          },
        },
      },
      SessionClosed: {
        type: 'object',
        required: ['proof', 'requests', 'proofTx'],
        properties: {
          proof: { type: 'object', description: 'PROOF.json (WorkProofJson) covering the whole session' },
          requests: { type: 'integer' },
          proofTx: hex32,
        },
      },
      JobRecord: {
        type: 'object',
        description:
          'What the node tells anyone about a job (jobs/publicJobView.ts; decision 1745): never the input artifact ids or the node’s own bookkeeping',
        required: ['jobId', 'status'],
        additionalProperties: false,
        properties: {
          jobId: hex32,
          // From the one list the TypeScript type derives from (decision 1746).
          status: { type: 'string', enum: [...JOB_RECORD_STATUSES] },
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' } },
          },
          outputs: { type: 'array', items: outputRef },
          proof: { type: 'object', description: 'PROOF.json (WorkProofJson)' },
          txs: {
            type: 'object',
            description:
              'transactions the node sent for the job, by purpose (claim, proof, finalize, fail, ...)',
            additionalProperties: hex32,
          },
          claimExpiresAt: {
            type: 'integer',
            description: 'chain time (unix s) after which the claim lapses',
          },
          challengeEndsAt: {
            type: 'integer',
            description: 'chain time (unix s) at which the challenge window ends',
          },
        },
      },
      JobResult: {
        type: 'object',
        required: ['jobId', 'proof', 'outputs'],
        additionalProperties: false,
        properties: {
          jobId: hex32,
          proof: { type: 'object', description: 'PROOF.json (WorkProofJson)' },
          response: { type: 'string', description: 'base64 channel response sealed to the requester' },
          outputs: {
            type: 'array',
            items: {
              ...outputRef,
              properties: {
                ...outputRef.properties,
                sealed: {
                  type: 'string',
                  contentEncoding: 'base64',
                  description: 'the sealed bytes, for the first outputs that fit 64 KiB in all',
                },
              },
            },
          },
          session: {
            type: 'object',
            description: 'an inference session: the preimage of the proof’s outputCommitment',
            required: ['salt', 'count', 'requestsHash', 'responsesHash'],
            properties: {
              salt: hex32,
              count: { type: 'string', pattern: '^[0-9]{1,20}$' },
              requestsHash: hex32,
              responsesHash: hex32,
            },
          },
        },
      },
    },
  },
} as const;
