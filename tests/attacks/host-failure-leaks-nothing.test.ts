import { runJob, sealInput } from '@firn/client';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import {
  filesUnder,
  readBytes,
  requesterOptions,
  startTestNetwork,
  type TestNetwork,
} from '../e2e/network.ts';

// Attack by a malicious host: a job the workload refuses, whose refusal message is derived from the
// requester's plaintext (an input tensor name, a value). The host reads everything it holds: its
// logs (debug level, enclave stderr relayed), its data dir (node.db, artifacts, WAL), its job
// record, the event stream's `end`, /metrics. The requester's secret must be in none of them;
// only the code is the host's. (Held: kept as a regression check.)

let net: TestNetwork;
beforeAll(async () => {
  net = await startTestNetwork();
}, 180_000);
afterAll(() => net?.stop());

const SECRET_NAME = 'patientRecordZq7Kx';
const SECRET_VALUE = 918273.625;

function holds(hay: Uint8Array | string, needle: string): boolean {
  const h = typeof hay === 'string' ? hay : Buffer.from(hay).toString('latin1');
  return h.includes(needle) || h.includes(Buffer.from(needle, 'utf16le').toString('latin1'));
}

describe('attack (host): plaintext-derived failure text in what the host holds', () => {
  it('a refused input leaves its tensor name and value nowhere on the host', async () => {
    const kem = await generateKemKeyPair();
    const model = await sealInput(tinyLinearModel().bytes, 'application/onnx', kem.publicKey);
    const input = await sealInput(
      new TextEncoder().encode(
        JSON.stringify({ [SECRET_NAME]: { dims: [1, 4], type: 'float32', data: [SECRET_VALUE, 2, 3, 4] } }),
      ),
      'application/json',
      kem.publicKey,
    );
    const err = await runJob({
      ...requesterOptions(net, kem),
      kind: 'inference',
      inputs: [
        { role: 'model', sealed: model },
        { role: 'input', sealed: input },
      ],
      params: { [`${SECRET_NAME}Param`]: SECRET_VALUE },
      escrow: 10n ** 15n,
      maxNodes: 1,
    }).then(
      () => undefined,
      (e: Error & { code?: string; jobId?: string }) => e,
    );
    expect(err, 'the job was expected to fail in the enclave').toBeDefined();
    // The requester itself gets the sealed detail (sanity: the secret was in the failure text).
    const requesterSaw = `${err!.code} ${err!.message}`;
    const jobId = (err as { jobId?: string }).jobId!;
    const base = (net.node as unknown as { url?: string }).url ?? '';
    expect(base).not.toBe('');
    expect(requesterSaw).toContain(SECRET_NAME);
    const hostViews: [string, string][] = [];
    hostViews.push(['logs', net.logs.join('\n')]);
    if (base !== '') {
      for (const path of [`/v1/jobs/${jobId}`, '/metrics', `/v1/jobs/${jobId}/events`])
        hostViews.push([path, await (await fetch(new URL(path, base))).text().catch(() => '')]);
    }
    const secrets = [SECRET_NAME, String(SECRET_VALUE)];
    const leaks: string[] = [];
    for (const [where, text] of hostViews)
      for (const s of secrets) if (holds(text, s)) leaks.push(`${s} in ${where}`);
    for (const f of filesUnder(net.dataDir))
      for (const s of secrets) if (holds(readBytes(f), s)) leaks.push(`${s} in ${f}`);
    expect(leaks, `requester saw: ${requesterSaw}`).toEqual([]);
  }, 180_000);
});
