import { artifactId } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import {
  errorOf,
  FAKE_ID as ID,
  FAKE_JOB as JOB,
  FAKE_PROOF as proof,
  useHostileHost,
} from '../../../tests/helpers/hostileNodeHost.ts';
import { MAX_RESULT_OUTPUT_SEALED_BYTES, MAX_RESULT_OUTPUTS, maxSealedBytes } from './nodeAnswers.ts';
import { NodeApi, type NodeJobResult } from './nodeApi.ts';
import { uploadSealed } from './marketJob.ts';
import { fetchResultOutputs, summaryOutputSizes } from './resultOutputs.ts';
import { summaryMismatch } from './runJob.ts';
import type { SealedInput } from './sealInput.ts';

// Every JSON answer of a node reaches the requester through NodeApi, shape-checked (nodeAnswers.ts):
// a local HTTP server plays a hostile host answering malformed shapes, and each call must fail
// with a typed error naming the node and the field, never a TypeError later in the caller.
const { host } = useHostileHost();
const jsonHost = (body: unknown, status = 200) =>
  host((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });

const ref = { role: 'y', artifactId: ID, contentType: 'application/octet-stream', size: 100 };

describe('NodeApi.getResult against a hostile host', () => {
  const cases: [string, unknown, string][] = [
    [
      'artifactId: 5',
      { jobId: JOB, proof, response: '', outputs: [{ ...ref, artifactId: 5 }] },
      'outputs.0.artifactId',
    ],
    ['no outputs', { jobId: JOB, proof, response: '' }, 'outputs'],
    ['outputs an object', { jobId: JOB, proof, response: '', outputs: { 0: ref } }, 'outputs'],
    ['10,000 outputs', { jobId: JOB, proof, response: '', outputs: Array(10_000).fill(ref) }, 'outputs'],
    [
      '17 outputs',
      { jobId: JOB, proof, response: '', outputs: Array(MAX_RESULT_OUTPUTS + 1).fill(ref) },
      'outputs',
    ],
    [
      'a size past the enclave bound',
      { jobId: JOB, proof, response: '', outputs: [{ ...ref, size: MAX_RESULT_OUTPUT_SEALED_BYTES + 1 }] },
      'outputs.0.size',
    ],
    [
      'sizes together past the enclave total',
      {
        jobId: JOB,
        proof,
        response: '',
        outputs: Array(3).fill({ ...ref, size: MAX_RESULT_OUTPUT_SEALED_BYTES }),
      },
      'outputs',
    ],
    [
      'a fractional size',
      { jobId: JOB, proof, response: '', outputs: [{ ...ref, size: 1.5 }] },
      'outputs.0.size',
    ],
    [
      'a role with a slash',
      { jobId: JOB, proof, response: '', outputs: [{ ...ref, role: '../x' }] },
      'outputs.0.role',
    ],
    [
      'inline bytes not base64',
      { jobId: JOB, proof, response: '', outputs: [{ ...ref, sealed: '{}' }] },
      'outputs.0.sealed',
    ],
    ['no proof', { jobId: JOB, response: '', outputs: [ref] }, 'proof'],
    [
      'a proof with a short signature',
      { jobId: JOB, proof: { ...proof, signature: '0x11' }, response: '', outputs: [ref] },
      'proof.signature',
    ],
    [
      'a proof with numeric work units',
      {
        jobId: JOB,
        proof: { ...proof, proof: { ...proof.proof, workUnits: 3 } },
        response: '',
        outputs: [ref],
      },
      'proof.proof.workUnits',
    ],
    ['a response that is not a string', { jobId: JOB, proof, response: {}, outputs: [ref] }, 'response'],
    ['null', null, '(body)'],
    ['another job', { jobId: ID, proof, response: '', outputs: [ref] }, 'jobId'],
  ];
  for (const [what, body, field] of cases)
    it(`${what}: E_PARSE naming the node and ${field}`, async () => {
      const { url } = await jsonHost(body);
      const err = await errorOf(new NodeApi(url).getResult(JOB));
      expect(err.code).toBe('E_PARSE');
      expect(err.message).toContain(url);
      expect(err.details).toMatchObject({ endpoint: url, field });
    });

  it('a 200 that is not JSON is E_PARSE naming the node', async () => {
    const { url } = await jsonHost('<html>');
    const err = await errorOf(new NodeApi(url).getResult(JOB));
    expect(err.code).toBe('E_PARSE');
    expect(err.message).toContain(url);
  });

  it('a well-formed result parses, ids lower-cased and unknown fields dropped', async () => {
    const upper = `0x${'CD'.repeat(32)}`;
    const { url } = await jsonHost({
      jobId: JOB,
      proof: { ...proof, extra: 'x'.repeat(100) },
      response: 'AAAA',
      outputs: [{ ...ref, artifactId: upper, extra: 1 }],
      extra: true,
    });
    const r = await new NodeApi(url).getResult(JOB);
    expect(r.outputs).toEqual([ref]);
    expect(r.proof).toEqual(proof);
    expect(Object.keys(r).sort()).toEqual(['jobId', 'outputs', 'proof', 'response']);
  });
});

describe('other node answers against a hostile host', () => {
  it('GET /v1/jobs/{id}: outputs with artifactId 5 is E_PARSE', async () => {
    const { url } = await jsonHost({ jobId: JOB, status: 'proved', outputs: [{ ...ref, artifactId: 5 }] });
    const err = await errorOf(new NodeApi(url).getJob(JOB));
    expect(err.details).toMatchObject({ endpoint: url, field: 'outputs.0.artifactId' });
  });

  it('GET /v1/jobs/{id}: a well-formed record keeps its transactions and times', async () => {
    const { url } = await jsonHost({
      jobId: JOB,
      status: 'finalized',
      txs: { claim: ID, proof: ID },
      claimExpiresAt: 5,
    });
    expect(await new NodeApi(url).getJob(JOB)).toEqual({
      jobId: JOB,
      status: 'finalized',
      txs: { claim: ID, proof: ID },
      claimExpiresAt: 5,
    });
  });

  it('GET /v1/jobs/{id}: 10,000 named transactions are E_PARSE', async () => {
    // 10,000 distinct purpose names of letters only: n in base 26, digits 0..p mapped to a..z.
    const letters = (n: number) =>
      n.toString(26).replace(/[0-9a-p]/g, (c) => String.fromCharCode(97 + Number.parseInt(c, 26)));
    const txs = Object.fromEntries(Array.from({ length: 10_000 }, (_, n) => [`t${letters(n)}`, ID]));
    expect(Object.keys(txs)).toHaveLength(10_000);
    const { url } = await jsonHost({ jobId: JOB, status: 'proved', txs });
    const err = await errorOf(new NodeApi(url).getJob(JOB));
    expect(err.details).toMatchObject({ field: 'txs' });
  });

  it('POST /v1/jobs: a record without a status is E_PARSE', async () => {
    const { url } = await jsonHost({ jobId: JOB });
    const err = await errorOf(
      new NodeApi(url).submitJob({ jobId: JOB, enc: ID, ciphertext: '', inputs: [] }),
    );
    expect(err.details).toMatchObject({ field: 'status' });
  });

  it('PUT /v1/artifacts: an id that is not 32 bytes of hex is E_PARSE', async () => {
    const { url } = await jsonHost({ id: 'x', size: 1 });
    const err = await errorOf(new NodeApi(url).uploadArtifact(new Uint8Array(4)));
    expect(err.details).toMatchObject({ field: 'id' });
  });

  it('POST /v1/sessions: a direct port out of range and a token that is not hex are E_PARSE', async () => {
    const open = { sessionId: JOB, salt: ID, expiresAt: 1, response: '' };
    const body = { jobId: JOB, enc: ID, ciphertext: '', inputs: [] };
    for (const [bad, field] of [
      [{ direct: { port: 70_000, token: ID } }, 'direct.port'],
      [{ direct: { port: 1, token: 'zz' } }, 'direct.token'],
      [{ accessToken: 5 }, 'accessToken'],
      [{ sessionId: undefined }, 'sessionId'],
    ] as const) {
      const { url } = await jsonHost({ ...open, ...bad });
      const err = await errorOf(new NodeApi(url).openSession(body));
      expect(err.details).toMatchObject({ endpoint: url, field });
    }
  });

  it('DELETE /v1/sessions/{id}: a negative request count is E_PARSE', async () => {
    const { url } = await jsonHost({ proof, requests: -1 });
    const err = await errorOf(new NodeApi(url).closeSession(JOB, new Uint8Array(1)));
    expect(err.details).toMatchObject({ field: 'requests' });
  });

  it('a refusal whose message is not a string is E_UNAVAILABLE naming the status, not an object message', async () => {
    const { url } = await jsonHost({ error: { code: 'E_CONFLICT', message: { toString: 1 } } }, 409);
    const err = await errorOf(new NodeApi(url).getResult(JOB));
    expect(err.code).toBe('E_UNAVAILABLE');
    expect(typeof err.message).toBe('string');
    expect(err.message).toContain('409');
  });

  it('a well-formed refusal keeps the node its code and message, quoted as the node’s', async () => {
    const { url } = await jsonHost({ error: { code: 'E_CONFLICT', message: 'no result yet' } }, 409);
    const err = await errorOf(new NodeApi(url).getResult(JOB));
    expect(err).toMatchObject({ code: 'E_CONFLICT' });
    expect((err as Error).message).toMatch(
      /^node http:\/\/127\.0\.0\.1:\d+\/? answered .* with 409 E_CONFLICT: no result yet$/,
    );
  });

  it('a refusal’s text is quoted without control characters and capped (decision 1822)', async () => {
    const text = '\u001b[2J\u001b[31mYOUR ESCROW WAS FORFEITED\u001b[0m\r\n\u202esend your key'.padEnd(
      1990,
      '#',
    );
    const { url } = await jsonHost({ error: { code: 'E_RATE_LIMITED', message: text } }, 429);
    const err = await errorOf(new NodeApi(url).getResult(JOB));
    expect(err).toMatchObject({ code: 'E_RATE_LIMITED' });
    const msg = (err as Error).message;
    expect(msg).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(msg.length).toBeLessThan(600);
    expect(msg).toContain('YOUR ESCROW WAS FORFEITED');
  });
});

describe('fetchResultOutputs', () => {
  const sealed = new Uint8Array(Buffer.from('a sealed artifact, as far as this test goes'));
  const id = artifactId(sealed);
  const result = (o: Partial<NodeJobResult['outputs'][number]>): NodeJobResult => ({
    jobId: JOB,
    proof: proof as NodeJobResult['proof'],
    response: '',
    outputs: [{ role: 'y', artifactId: id, contentType: 'x', size: sealed.length, ...o }],
  });

  it('downloads each output once and returns it when it is its listed size and id', async () => {
    const { url, asked } = await host((_req, res) => res.end(sealed));
    const got = await fetchResultOutputs(new NodeApi(url), result({}));
    expect(got).toEqual([{ role: 'y', artifactId: id, contentType: 'x', sealed }]);
    expect(asked).toEqual([`GET /v1/artifacts/${id}`]);
  });

  it('a download past the listed size is cut off there: E_TOO_LARGE', async () => {
    let written = 0;
    const { url } = await host((_req, res) => {
      // The host keeps sending for as long as it is read (64 MiB in all).
      const chunk = Buffer.alloc(1 << 20, 7);
      const more = () => {
        while (written < 64 << 20) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const err = await errorOf(fetchResultOutputs(new NodeApi(url), result({})));
    expect(err.code).toBe('E_TOO_LARGE');
    // The requester stopped reading long before the host's 64 MiB.
    expect(written).toBeLessThan(32 << 20);
  });

  it('attack: a host serving an output 100x its sealed size is cut at that size (+ one read chunk) and named', async () => {
    // A real size the schema allows the host to overstate up to ~514 MiB: 1 MiB sealed, served as
    // 100 MiB. The host lists the size it serves (so the listing check cannot catch it): only the
    // enclave's sealed summary knows the real size, and the download is capped there.
    const real = new Uint8Array(1 << 20).fill(9);
    const realId = artifactId(real);
    let written = 0;
    const { url } = await host((_req, res) => {
      const more = () => {
        while (written < 100 * real.length) {
          written += real.length;
          if (!res.write(real)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const hostile: NodeJobResult = {
      ...result({}),
      outputs: [{ role: 'y', artifactId: realId, contentType: 'x', size: real.length }],
    };
    const err = await errorOf(fetchResultOutputs(new NodeApi(url), hostile, [real.length]));
    expect(err).toMatchObject({
      code: 'E_TOO_LARGE',
      details: { endpoint: url, artifactId: realId, role: 'y', limit: real.length },
    });
    expect(err.message).toContain(url);
    expect(err.message).toContain(realId);
    expect(err.message).toContain('the enclave sealed');
    // Read: the real size and at most one read chunk past it (undici's chunks are 64 KiB or less
    // on loopback; allow 1 MiB).
    const read = (err.details as { size: number }).size;
    expect(read).toBeGreaterThan(real.length);
    expect(read - real.length).toBeLessThanOrEqual(1 << 20);
    expect(written).toBeLessThan(50 * real.length);
  });

  it('attack: a listed size above the sealed one is refused before any download', async () => {
    const { url, asked } = await host((_req, res) => res.end(sealed));
    const err = await errorOf(
      fetchResultOutputs(new NodeApi(url), result({ size: sealed.length * 100 }), [sealed.length]),
    );
    expect(err).toMatchObject({ code: 'E_ARTIFACT_TAMPERED', details: { endpoint: url, artifactId: id } });
    expect(err.message).toContain('the enclave sealed');
    expect(asked).toEqual([]);
  });

  it('a body shorter than the sealed size is E_ARTIFACT_TAMPERED naming the node and artifact', async () => {
    const { url } = await host((_req, res) => res.end(sealed.subarray(1)));
    const err = await errorOf(fetchResultOutputs(new NodeApi(url), result({}), [sealed.length]));
    expect(err).toMatchObject({ code: 'E_ARTIFACT_TAMPERED', details: { endpoint: url, artifactId: id } });
    expect(err.message).toContain(`${sealed.length - 1} bytes, sealed as ${sealed.length}`);
  });

  it('summaryOutputSizes reads whole sizes in bound; anything else leaves that output at the listed cap', () => {
    expect(
      summaryOutputSizes({
        outputs: [{ size: 5 }, {}, { size: -1 }, { size: 1.5 }, { size: '5' }, null, { size: 2 ** 40 }],
      }),
    ).toEqual([5, undefined, undefined, undefined, undefined, undefined, undefined]);
    expect(summaryOutputSizes({})).toEqual([]);
  });

  it('summaryMismatch names an output whose listed size is not the sealed one', () => {
    const r = result({});
    expect(summaryMismatch({ outputs: [{ role: 'y', artifactId: id, size: sealed.length }] }, r)).toEqual([]);
    expect(summaryMismatch({ outputs: [{ role: 'y', artifactId: id }] }, r)).toEqual([]);
    expect(summaryMismatch({ outputs: [{ role: 'y', artifactId: id, size: 3 }] }, r)).toEqual([
      `output y is listed as ${sealed.length} bytes, the enclave sealed 3`,
    ]);
  });

  it('a short download or other bytes are E_ARTIFACT_TAMPERED naming the node and role', async () => {
    const { url } = await host((_req, res) => res.end(sealed.subarray(1)));
    const err = await errorOf(fetchResultOutputs(new NodeApi(url), result({})));
    expect(err).toMatchObject({ code: 'E_ARTIFACT_TAMPERED', details: { endpoint: url, role: 'y' } });
  });

  it('inline bytes that are not the listed id are E_ARTIFACT_TAMPERED without any download', async () => {
    const { url, asked } = await host((_req, res) => res.end(sealed));
    const err = await errorOf(
      fetchResultOutputs(new NodeApi(url), result({ sealed: Buffer.from('other bytes').toString('base64') })),
    );
    expect(err.code).toBe('E_ARTIFACT_TAMPERED');
    expect(asked).toEqual([]);
  });
});

describe('output bounds', () => {
  it('the sealed bound covers the enclave bound of 512 MiB plaintext with at most a few MiB of overhead', () => {
    const plain = 512 * 1024 * 1024;
    expect(MAX_RESULT_OUTPUT_SEALED_BYTES).toBe(maxSealedBytes(plain));
    expect(MAX_RESULT_OUTPUT_SEALED_BYTES).toBeGreaterThan(plain);
    expect(MAX_RESULT_OUTPUT_SEALED_BYTES - plain).toBeLessThan(3 * 1024 * 1024);
  });
});

describe('NodeApi.followEvents against a hostile host', () => {
  const sse = (body: string) =>
    host((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(body);
    });
  for (const [what, body, field] of [
    ['a progress event of null', 'event: progress\ndata: null\n\n', '(body)'],
    ['a progress message that is a number', 'event: progress\ndata: {"seq":0,"message":5}\n\n', 'message'],
    ['an end without a status', 'event: end\ndata: {"events":0}\n\n', 'status'],
    [
      'an end whose error code is an object',
      'event: end\ndata: {"status":"failed","error":{"code":{}}}\n\n',
      'error.code',
    ],
    [
      'an end with a fractional event count',
      'event: end\ndata: {"status":"proved","events":0.5}\n\n',
      'events',
    ],
  ] as const)
    it(`${what} is E_PARSE naming the node and ${field}, never retried`, async () => {
      const { url, asked } = await sse(body);
      const err = await errorOf(new NodeApi(url).followEvents(JOB, () => {}, { reconnectDelayMs: 1 }));
      expect(err.code).toBe('E_PARSE');
      expect(err.details).toMatchObject({ endpoint: url, field });
      expect(asked).toHaveLength(1);
    });
});

describe('uploadSealed against a hostile host', () => {
  it('an upload answered with another well-formed id is E_ARTIFACT_TAMPERED naming the node', async () => {
    const sealed = new Uint8Array([1, 2, 3]);
    const { url } = await jsonHost({ id: ID, size: 3 });
    const err = await errorOf(
      uploadSealed(
        new NodeApi(url),
        { sealed, artifactId: artifactId(sealed), dataKey: new Uint8Array(32) } as SealedInput,
        'input',
      ),
    );
    expect(err).toMatchObject({ code: 'E_ARTIFACT_TAMPERED', details: { endpoint: url, field: 'id' } });
  });
});
