import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobFailedError, runJob } from '@firn/client';
import type { FirnError } from '@firn/core';
import { encodeOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTrain, type TrainRunJob } from '../../packages/cli/src/commands/train.ts';
import { filesUnder, startTestNetwork, stateOf, type TestNetwork } from './network.ts';

// Secrecy: canary strings planted in the model (doc string, metadata, tensor names) and in the
// input never appear in the node's logs, anything under its data dir, the frames it exchanges
// with the enclave, or any HTTP body it sends or receives in this process (client <-> node,
// node <-> chain RPC, verifier <-> node). Not covered: memory of the host process, and side
// channels such as sizes and timing (the host learns artifact sizes by design).
const CANARY = `canary${randomBytes(8).toString('hex')}`;
const canaries = [`${CANARY}doc`, `${CANARY}meta`, `${CANARY}in`, `${CANARY}out`, `${CANARY}data`];
const bodies: string[] = [];
const pending: Promise<void>[] = [];
const frames: string[] = [];
let net: TestNetwork;
const realFetch = globalThis.fetch;

function text(b: unknown): string {
  if (b === undefined || b === null) return '';
  if (typeof b === 'string') return b;
  if (b instanceof Uint8Array) return Buffer.from(b).toString('latin1');
  if (b instanceof ArrayBuffer) return Buffer.from(b).toString('latin1');
  return String(b);
}

beforeAll(async () => {
  globalThis.fetch = (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    bodies.push(text(init?.body));
    const res = await realFetch(input, init);
    pending.push(
      res
        .clone()
        .arrayBuffer()
        .then((b) => void bodies.push(Buffer.from(b).toString('latin1')))
        .catch(() => undefined),
    );
    return res;
  }) as typeof fetch;
  net = await startTestNetwork();
  const call = net.node.supervisor.call.bind(net.node.supervisor);
  net.node.supervisor.call = (async (method: string, params: Record<string, unknown> = {}, t?: number) => {
    frames.push(JSON.stringify(params));
    try {
      const r = await call(method, params, t);
      frames.push(JSON.stringify(r));
      return r;
    } catch (e) {
      // What the host learns of a refusal: the error it got back from the enclave.
      frames.push(JSON.stringify({ code: (e as FirnError).code, message: (e as Error).message }));
      throw e;
    }
  }) as typeof net.node.supervisor.call;
  net.node.supervisor.on('event', (name: string, data: unknown) => frames.push(name + JSON.stringify(data)));
}, 120_000);
afterAll(async () => {
  globalThis.fetch = realFetch;
  await net?.stop();
});

describe('canary', () => {
  it('never leaves the enclave in plaintext', async () => {
    const model = encodeOnnxModel(
      {
        name: 'canary_model',
        nodes: [{ opType: 'Mul', inputs: [`${CANARY}in`, 'k'], outputs: [`${CANARY}out`] }],
        initializers: [{ name: 'k', dims: [1], dtype: 'float', data: Float32Array.of(3) }],
        inputs: [{ name: `${CANARY}in`, elemType: 'float', shape: ['N', 2] }],
        outputs: [{ name: `${CANARY}out`, elemType: 'float', shape: ['N', 2] }],
      },
      { docString: `${CANARY}doc`, metadata: { secret: `${CANARY}meta` } },
    );
    // Positive control: the canaries are in the plaintext as plain bytes, so a leak would match.
    for (const c of canaries.slice(0, 4)) expect(Buffer.from(model).includes(c)).toBe(true);
    // The input carries the canary as its tensor name; the job params carry another one.
    const inputText = JSON.stringify({ [`${CANARY}in`]: { dims: [1, 2], type: 'float32', data: [1.5, -2] } });
    expect(inputText.includes(`${CANARY}in`)).toBe(true);
    const r = await runJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      kind: 'inference',
      inputs: [
        { role: 'model', bytes: model, contentType: 'application/onnx' },
        { role: 'input', bytes: new TextEncoder().encode(inputText), contentType: 'application/json' },
      ],
      params: { label: `${CANARY}data` },
      escrow: 10n ** 15n,
    });
    expect(r.proofCheck.ok).toBe(true);
    const out = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes));
    expect(out[`${CANARY}out`].data).toEqual([4.5, -6]);
    await Promise.all(pending);

    const files = filesUnder(net.dataDir);
    expect(files.length).toBeGreaterThan(3);
    const haystacks: [string, string][] = [
      ['logs', net.logs.join('\n')],
      ['enclave frames', frames.join('\n')],
      ['http bodies', bodies.join('\n')],
      ...files.map((f): [string, string] => [f, readFileSync(f).toString('latin1')]),
    ];
    expect(bodies.length).toBeGreaterThan(10);
    for (const [where, hay] of haystacks)
      for (const c of canaries) expect(hay.includes(c), `${c} in ${where}`).toBe(false);
  });

  it('a failed training job tells the host only the code; the requester gets the full message', async () => {
    // The canary is a column name of the requester's CSV, and a cell under it is missing: the
    // enclave's message names the column, which is the requester's plaintext.
    const column = `${CANARY}col`;
    const csv = `a,${column},y\n1,2,0\n3,,1\n5,6,0\n7,8,1\n`;
    const before = { logs: net.logs.length, frames: frames.length, bodies: bodies.length };
    const err = await runJob({
      rpcUrl: net.anvil.rpcUrl,
      deployment: net.deployment,
      requesterKey: net.requester.privateKey,
      policy: net.policy,
      roots: net.roots,
      kind: 'training',
      inputs: [{ role: 'dataset', bytes: new TextEncoder().encode(csv), contentType: 'text/csv' }],
      params: { task: 'classification', epochs: 1, hidden: [4] },
      escrow: 10n ** 15n,
    }).catch((e: unknown) => e);
    // The requester: typed, with the full message (row, column).
    expect(err).toBeInstanceOf(JobFailedError);
    const f = err as JobFailedError;
    expect(f.code).toBe('E_DATA_INVALID');
    expect(f.message).toContain(`row 3 column ${column} is missing`);
    // The host: the job record (GET /v1/jobs/{id}, unauthenticated) has the code only.
    const rec = (await (await fetch(`${net.node.url}/v1/jobs/${f.jobId}`)).json()) as {
      status: string;
      error?: { code: string; message: string };
    };
    expect(rec.status).toBe('failed');
    expect(rec.error?.code).toBe('E_DATA_INVALID');
    await Promise.all(pending);
    // Positive control: the host did relay this job's failure (frames and bodies grew).
    expect(frames.length).toBeGreaterThan(before.frames);
    expect(bodies.length).toBeGreaterThan(before.bodies);
    expect(frames.slice(before.frames).join('\n')).toContain('E_DATA_INVALID');
    const haystacks: [string, string][] = [
      ['logs', net.logs.join('\n')],
      ['enclave frames', frames.join('\n')],
      ['http bodies', bodies.join('\n')],
      ['job record', JSON.stringify(rec)],
      ...filesUnder(net.dataDir).map((file): [string, string] => [
        file,
        readFileSync(file).toString('latin1'),
      ]),
    ];
    for (const [where, hay] of haystacks) expect(hay.includes(CANARY), `${CANARY} in ${where}`).toBe(false);
  });

  it('firn train prints the full message the enclave sealed; the host still sees only the code', async () => {
    const column = `${CANARY}cli`;
    const work = mkdtempSync(join(tmpdir(), 'firn-canary-cli-'));
    const data = join(work, 'data.csv');
    writeFileSync(data, `a,${column},y\n1,2,0\n3,,1\n5,6,0\n7,8,1\n`);
    const devnet = join(work, 'devnet.json');
    writeFileSync(devnet, JSON.stringify(stateOf(net, net.rootPem)));
    const out: string[] = [];
    const err: string[] = [];
    const code = await runTrain(
      // No local pre-check: the CSV goes to the enclave, which finds the missing cell.
      {
        data,
        out: join(work, 'model'),
        devnet,
        task: 'classification',
        epochs: '1',
        hidden: '4',
        precheck: false,
      },
      {
        runJob: runJob as unknown as TrainRunJob,
        stdout: { write: (t: string) => out.push(t) },
        stderr: { write: (t: string) => err.push(t) },
      },
    );
    // A mistake in the user's own file: exit 3 (README, exit codes).
    expect(code).toBe(3);
    expect(err.join('')).toContain(`error: E_DATA_INVALID: CSV: row 3 column ${column} is missing`);
    await Promise.all(pending);
    const haystacks: [string, string][] = [
      ['logs', net.logs.join('\n')],
      ['enclave frames', frames.join('\n')],
      ['http bodies', bodies.join('\n')],
      ...filesUnder(net.dataDir).map((file): [string, string] => [
        file,
        readFileSync(file).toString('latin1'),
      ]),
    ];
    for (const [where, hay] of haystacks) expect(hay.includes(column), `${column} in ${where}`).toBe(false);
  });
});
