import { fetchResultOutputs, NodeApi, type NodeJobResult } from '@firn/client';
import { artifactId } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import { errorOf, FAKE_JOB, FAKE_PROOF, useHostileHost } from '../helpers/hostileNodeHost.ts';

// The attack: a hostile node, asked for a proved output (GET /v1/artifacts/{id}), answers with a
// refusal status instead of the bytes. The requester caps a 2xx body at the size the enclave
// sealed (decision 1600), but read a refusal's body as a JSON answer, up to 64 MiB, whatever the
// sealed size; and a refusal with a well-formed error body surfaced with the host's own words,
// naming neither the node nor the artifact. Promise (decisions 1560, 1600): the requester reads at
// most the sealed size plus one read chunk, and its errors name the node URL and the artifact id.
const sealed = new Uint8Array(4096).fill(5);
const id = artifactId(sealed);
const result: NodeJobResult = {
  jobId: FAKE_JOB,
  proof: FAKE_PROOF as NodeJobResult['proof'],
  response: '',
  outputs: [{ role: 'y', artifactId: id, contentType: 'x', size: sealed.length }],
};
const { host } = useHostileHost();

describe('attack: a hostile node refuses a proved output download', () => {
  it('a refusal status with a 60 MiB body is not read past the sealed size (+ one chunk)', async () => {
    let written = 0;
    let closed!: Promise<void>;
    const { url } = await host((_req, res) => {
      closed = new Promise((r) => res.once('close', () => r()));
      res.writeHead(500, { 'content-type': 'application/json' });
      // A JSON error body padded out to just under the requester's JSON cap.
      const chunk = Buffer.alloc(1 << 20, 0x20);
      res.write('{"error":{"code":"E_UNAVAILABLE","message":"busy"}');
      const more = () => {
        while (written < 60 << 20) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end('}');
      };
      more();
    });
    const err = await errorOf(fetchResultOutputs(new NodeApi(url), result, [sealed.length]));
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    // Loopback socket buffers hold a few MiB; a requester reading only the sealed size plus one
    // chunk lets the host write nowhere near its 60 MiB.
    expect(written).toBeLessThan(16 << 20);
    expect(err.message).toContain(url);
    expect(err.message).toContain(id);
  });

  it('a well-formed refusal body is reported naming the node URL and the artifact id', async () => {
    const { url } = await host((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'E_NOT_FOUND', message: 'no such thing' } }));
    });
    const err = await errorOf(fetchResultOutputs(new NodeApi(url), result, [sealed.length]));
    expect(err.message).toContain(url);
    expect(err.message).toContain(id);
    expect(err.details).toMatchObject({ endpoint: url, artifactId: id });
  });
});
