import { computeOutputCommitment, type Hex } from '@firn/core';
import { checkResultAvailable } from '@firn/verifier';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NodeFacingChain,
  nodeFacingVerifier,
  registerNodeAt,
  serveHttp,
  startNodeFacingChain,
} from '../helpers/nodeFacingChain.ts';

// A node answers a verifier's request with a redirect to an internal URL (the cloud metadata
// service, an admin port, another node's endpoint): the verifier must refuse the redirect and
// never contact its target (docs/decisions/1832-node-facing-fetches.md). The result check of every
// Work Proof used fetch's default redirect mode ('follow'); the attestation request refused
// redirects already. Everything here listens on 127.0.0.1, so private endpoints are allowed: the
// redirect alone is under test.

const LOCAL = { allowPrivateEndpoints: true };

let chain: NodeFacingChain;
let internal: Awaited<ReturnType<typeof serveHttp>>;
const internalHits: string[] = [];
const servers: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  chain = await startNodeFacingChain();
  internal = await serveHttp((req, res) => {
    internalHits.push(`${req.method} ${req.url}`);
    res.setHeader('content-type', 'application/json');
    res.end('{"secret":"metadata"}');
  });
  servers.push(internal);
}, 120_000);
afterAll(async () => {
  for (const s of servers) await s.close();
  await chain?.anvil.stop();
});

describe('a node redirects the verifier to an internal URL', () => {
  it.each([301, 302, 303, 307, 308])(
    'the result check refuses a %i for the result and never asks its target',
    async (status) => {
      internalHits.length = 0;
      const node = await serveHttp((_req, res) => {
        res.statusCode = status;
        res.setHeader('location', `${internal.url}/latest/meta-data/iam/security-credentials/`);
        res.end();
      });
      servers.push(node);
      const { enclaveId } = await registerNodeAt(chain, node.url);
      const r = await checkResultAvailable(
        chain.gov,
        { jobId: `0x${'01'.repeat(32)}`, enclaveId, outputCommitment: `0x${'02'.repeat(32)}` },
        LOCAL,
      );
      expect(r.available).toBe(false);
      expect(r.reason).toContain(`redirect (${status})`);
      expect(r.reason).toContain(`${node.url}/v1/jobs/0x${'01'.repeat(32)}/result`);
      expect(internalHits, 'requests the verifier sent to the internal service').toEqual([]);
    },
  );

  it('the result check refuses a redirect for an output download and never asks its target', async () => {
    internalHits.length = 0;
    const artifactId = `0x${'5a'.repeat(32)}` as Hex;
    const outputs = [{ role: 'output', artifactId }];
    const node = await serveHttp((req, res) => {
      if (req.url?.endsWith('/result')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ outputs }));
        return;
      }
      res.statusCode = 307;
      res.setHeader('location', `${internal.url}/admin`);
      res.end();
    });
    servers.push(node);
    const { enclaveId } = await registerNodeAt(chain, node.url);
    const r = await checkResultAvailable(
      chain.gov,
      { jobId: `0x${'03'.repeat(32)}`, enclaveId, outputCommitment: computeOutputCommitment(outputs) },
      LOCAL,
    );
    expect(r).toMatchObject({ available: false });
    expect(r.reason).toContain('redirect (307)');
    expect(internalHits).toEqual([]);
  });

  it("the verifier daemon's attestation request refuses a redirect: no vote, the target never asked", async () => {
    internalHits.length = 0;
    const node = await serveHttp((req, res) => {
      req.resume();
      res.statusCode = 307;
      res.setHeader('location', `${internal.url}/v1/attestation`);
      res.end();
    });
    servers.push(node);
    const { event } = await registerNodeAt(chain, node.url);
    const { daemon, warnings } = nodeFacingVerifier(chain, LOCAL);
    await daemon.onRegistration(event);
    expect(daemon.stats).toMatchObject({ approved: 0, refused: 0, skipped: 1 });
    expect(warnings.join('\n')).toContain('redirect (307)');
    expect(internalHits).toEqual([]);
  });

  it('control: the internal service answers a direct request (a followed redirect would have reached it)', async () => {
    internalHits.length = 0;
    const { enclaveId } = await registerNodeAt(chain, internal.url);
    await checkResultAvailable(
      chain.gov,
      { jobId: `0x${'04'.repeat(32)}`, enclaveId, outputCommitment: `0x${'02'.repeat(32)}` },
      LOCAL,
    );
    expect(internalHits).toEqual([`GET /v1/jobs/0x${'04'.repeat(32)}/result`]);
  });
});
