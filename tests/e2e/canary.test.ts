import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { runJob } from '@firn/client';
import { encodeOnnxModel } from '@firn/ml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, startTestNetwork, type TestNetwork } from './network.ts';

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
    const r = await call(method, params, t);
    frames.push(JSON.stringify(r));
    return r;
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
});
