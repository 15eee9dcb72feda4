/** OpenAPI 3.1 description of the node API, served at GET /v1/openapi.json (docs/api.md). */
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
const errors = {
  '400': {
    description: 'Invalid input',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
  '404': {
    description: 'Not found',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  },
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
    '/v1/node': {
      get: {
        summary: 'Node identity and registration status',
        responses: { '200': { description: 'Identity' } },
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
        responses: { '200': { description: 'Evidence bundle' }, ...errors },
      },
    },
    '/v1/artifacts': {
      put: {
        summary:
          'Upload a sealed artifact (streamed, size-capped); the id is the SHA-256 of the bytes received',
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
          '413': { description: 'Too large' },
          ...errors,
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
        },
      },
    },
    '/v1/jobs': {
      post: {
        summary: 'Submit an HPKE-encrypted job request for a job posted on chain',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/JobSubmission' } } },
        },
        responses: {
          '202': {
            description: 'Accepted; the node claims and runs it',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/JobRecord' } } },
          },
          '409': { description: 'Job not Open, or already submitted here' },
          ...errors,
        },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        summary: 'Job status, error code if failed, output artifact ids and proof',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': {
            description: 'Job record',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/JobRecord' } } },
          },
          ...errors,
        },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        summary:
          'Server-sent events: `progress` (data {seq, message: base64 channel event}) then `end` (data {status, error?})',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': { description: 'Event stream', content: { 'text/event-stream': {} } },
          ...errors,
        },
      },
    },
    '/v1/jobs/{id}/result': {
      get: {
        summary:
          'Sealed outputs (inline base64 up to 8 MiB each), the channel response and the signed Work Proof',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': { description: 'Result' },
          '409': { description: 'Not finished' },
          '422': { description: 'Job failed' },
          ...errors,
        },
      },
    },
    '/v1/sessions': {
      post: {
        summary:
          'Open a warm inference session for a job of kind inference-session posted on chain: the node claims it and the enclave verifies the model grant and loads the model once',
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
          ...errors,
        },
      },
    },
    '/v1/sessions/{id}/requests': {
      post: {
        summary:
          'One inference request: the body is a binary session message (sealed with the session keys, strictly increasing sequence number); the response is the sealed output message. The host relays bytes only.',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        requestBody: {
          required: true,
          content: {
            'application/octet-stream': { schema: { type: 'string', format: 'binary', maxLength: 8388608 } },
          },
        },
        responses: {
          '200': {
            description: 'Sealed response message',
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          '413': { description: 'Request over 8 MiB' },
          '422': { description: 'Replayed, reordered or altered message (E_CHANNEL_SEQUENCE, E_DECRYPT)' },
          ...errors,
        },
      },
    },
    '/v1/sessions/{id}': {
      delete: {
        summary:
          'Close the session: the enclave signs one Work Proof for it and the node submits it on chain',
        parameters: [{ name: 'id', in: 'path', required: true, schema: hex32 }],
        responses: {
          '200': {
            description: 'Closed',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/SessionClosed' } } },
          },
          ...errors,
        },
      },
    },
    '/v1/openapi.json': {
      get: { summary: 'This document', responses: { '200': { description: 'OpenAPI document' } } },
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
        required: ['jobId', 'status'],
        properties: {
          jobId: hex32,
          status: { enum: ['accepted', 'claimed', 'running', 'proved', 'failed'] },
          error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
          outputs: { type: 'array', items: { type: 'object' } },
          proof: { type: 'object', description: 'PROOF.json (WorkProofJson)' },
        },
      },
    },
  },
} as const;
