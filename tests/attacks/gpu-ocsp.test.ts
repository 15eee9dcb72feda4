import 'reflect-metadata';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkOcsp } from '../../packages/attestation/src/nvidia/checkOcsp.ts';
import {
  der,
  issueTestCert,
  readOcspRequest,
  signOcspAnswer,
  type TestCert,
} from '../../packages/attestation/src/nvidia/testing/testPki.ts';

// A malicious OCSP responder (or a host replaying recorded answers) against GPU revocation checks.
// The production GPU policy (decision 0921) needs revocation checked by OCSP, or an authenticated
// answer at most a day past its nextUpdate; a revoked GPU must not pass.
const NOW = 1_760_000_000;
type Node = TestCert;
const issue = (name: string, issuer: Node | undefined, ca: boolean, serial: string) =>
  issueTestCert(name, issuer, ca, serial, [NOW - 86400 * 365 * 3, NOW + 86400 * 365 * 10]);

let root: Node;
let ca: Node;
let leaf: Node;
let sibling: Node;

interface Answer {
  signer: (serial: string) => Node;
  thisUpdate: number;
  nextUpdate?: number;
}

/** A responder answering "good" for every certificate asked, as `a` says. */
function responder(a: Answer): typeof fetch {
  return (async (_url: unknown, init?: RequestInit) => {
    const { reqCert, serial } = readOcspRequest(init!.body as Uint8Array);
    const signer = a.signer(serial);
    const answer = await signOcspAnswer({
      certID: reqCert,
      responder: signer,
      signer,
      producedAt: a.thisUpdate,
      thisUpdate: a.thisUpdate,
      ...(a.nextUpdate !== undefined ? { nextUpdate: a.nextUpdate } : {}),
    });
    return new Response(answer, { status: 200 });
  }) as unknown as typeof fetch;
}

beforeAll(async () => {
  root = await issue('Test Device Identity CA', undefined, true, '01');
  ca = await issue('Test Provisioner ICA', root, true, '02');
  leaf = await issue('Test GPU leaf', ca, false, '0a0b0c');
  sibling = await issue('Another GPU leaf', ca, false, '0a0b0d');
});
const issuerOf = (serial: string) => (serial === '0a0b0c' ? ca : root);
const chain = () => [der(leaf), der(ca), der(root)];

describe('attack: OCSP replay and unauthorised OCSP signers', () => {
  it('a recorded "good" answer without nextUpdate, two years old, is not a current check', async () => {
    // Replayed forever: with no nextUpdate nothing is ever stale, so a GPU revoked since passes.
    const old = NOW - 2 * 365 * 86400;
    const r = await checkOcsp(
      chain(),
      { url: 'http://127.0.0.1:1/', fetch: responder({ signer: issuerOf, thisUpdate: old }) },
      NOW,
    );
    expect(r.checked).toBe(false);
  });

  it('a "good" answer signed by a device key (another GPU leaf under the same CA) is refused', async () => {
    // A device certificate is no OCSP signer: it is neither the issuing CA nor delegated by it
    // (id-kp-OCSPSigning). One extracted device key must not vouch for every GPU.
    const r = await checkOcsp(
      chain(),
      {
        url: 'http://127.0.0.1:1/',
        fetch: responder({
          signer: (serial) => (serial === '0a0b0c' ? sibling : root),
          thisUpdate: NOW - 60,
          nextUpdate: NOW + 3600,
        }),
      },
      NOW,
    );
    expect(r.checked).toBe(false);
  });
});
