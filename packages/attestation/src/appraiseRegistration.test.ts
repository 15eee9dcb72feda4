import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { bytesToHex, type EvidenceBundle, type Hex, hexToBytes, REFUSAL_CODES } from '@firn/core';
import { createEnclaveProgram, createSimulatedProvider } from '@firn/enclave';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { describe, expect, it } from 'vitest';
import {
  appraiseRegistration,
  evidenceOperatorRefusal,
  fetchEvidenceOverHttp,
  type RegistrationClaim,
  type RegistrationVerdict,
} from './appraiseRegistration.ts';
import { DEV_POLICY } from './policy/policy.ts';
import { certificateDer } from './simulated/simulatedPlatform.ts';

// Decision 1830: the report data binds the operator the enclave was started for, and a
// registration is approved only when that is the operator the registry records. The attack: B
// registers A's Enclave ID, enclave address and KEM key with an endpoint of its own that relays
// the verifier's attestation request to A's node. A's enclave answers with genuine evidence for the
// verifier's nonce; before this decision the verifier approved, and B became the operator of A's
// hardware. Real simulated enclave programs in this process; no chain (the verifier daemon and the
// devnet test cover the votes).

const root = await createSimulatedRoot();
const roots = { simulated: [certificateDer(root.certificatePem)] };
const OPERATOR_A = bytesToHex(randomBytes(20));
const OPERATOR_B = bytesToHex(randomBytes(20));

/** An initialised simulated enclave started for `operator` (none when undefined). */
async function enclaveFor(operator: Hex | undefined) {
  const platform = await createSimulatedPlatform(root);
  const sha = new Uint8Array(randomBytes(32));
  const program = createEnclaveProgram({
    provider: createSimulatedProvider(platform, sha),
    measurementRegisters: [sha],
    platformId: hexToBytes(platform.platformId),
  });
  const id = (await program.handle('init', operator === undefined ? {} : { operator })) as {
    enclaveId: Hex;
    measurement: Hex;
    enclaveAddress: Hex;
    kemPublicKey: Hex;
    operator?: Hex;
  };
  const attest = async (nonce: Uint8Array) =>
    (await program.handle('attest', { nonce: bytesToHex(nonce) })) as EvidenceBundle;
  /** The registration of this enclave's identity by `registeredBy`. */
  const claim = (registeredBy: Hex): RegistrationClaim => ({
    enclaveId: id.enclaveId,
    teeType: 'simulated',
    measurement: id.measurement,
    enclaveAddress: id.enclaveAddress,
    kemPublicKey: id.kemPublicKey,
    endpoint: 'http://relay.invalid',
    operator: registeredBy,
  });
  return { id, attest, claim };
}

/** A verifier's appraisal of `claim`, its evidence fetched through `relay`. */
function appraise(claim: RegistrationClaim, relay: (nonce: Uint8Array) => Promise<unknown>) {
  return appraiseRegistration(claim, {
    now: Math.floor(Date.now() / 1000),
    policy: DEV_POLICY,
    roots,
    fetchEvidence: (_endpoint, nonce) => relay(nonce),
  });
}

const codes = (v: RegistrationVerdict) => (v.approve ? [] : v.reasons.map((r) => r.code));

describe('appraiseRegistration: the evidence speaks for the registered operator', () => {
  it("A's own registration of its enclave is approved; the bundle names A", async () => {
    const a = await enclaveFor(OPERATOR_A);
    expect(a.id.operator).toBe(OPERATOR_A);
    const v = await appraise(a.claim(OPERATOR_A), a.attest);
    expect(v.approve, JSON.stringify(codes(v))).toBe(true);
    if (v.approve) expect(v.appraisal.bundle?.operator).toBe(OPERATOR_A);
    // An upper-case registry address is the same account.
    expect(
      (await appraise(a.claim(OPERATOR_A.toUpperCase().replace('0X', '0x') as Hex), a.attest)).approve,
    ).toBe(true);
  });

  it("attack: B registers A's identity behind a relay to A's node: refused E_EVIDENCE_OPERATOR naming both", async () => {
    const a = await enclaveFor(OPERATOR_A);
    const v = await appraise(a.claim(OPERATOR_B), a.attest);
    expect(v.approve).toBe(false);
    if (v.approve) return;
    expect(v.reasonCode).toBe(REFUSAL_CODES.E_EVIDENCE_OPERATOR);
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0]!.code).toBe('E_EVIDENCE_OPERATOR');
    expect(v.reasons[0]!.message).toContain(OPERATOR_A);
    expect(v.reasons[0]!.message).toContain(OPERATOR_B);
  });

  it("the relay rewrites the bundle's operator to B: the report data no longer matches", async () => {
    const a = await enclaveFor(OPERATOR_A);
    const v = await appraise(a.claim(OPERATOR_B), async (n) => ({
      ...(await a.attest(n)),
      operator: OPERATOR_B,
    }));
    expect(codes(v)).toContain('E_EVIDENCE_BINDING');
  });

  it("the relay strips the bundle's operator: the report data no longer matches", async () => {
    const a = await enclaveFor(OPERATOR_A);
    for (const registeredBy of [OPERATOR_A, OPERATOR_B]) {
      const v = await appraise(a.claim(registeredBy), async (n) => {
        const { operator: _dropped, ...rest } = await a.attest(n);
        return rest;
      });
      expect(codes(v)).toContain('E_EVIDENCE_BINDING');
    }
  });

  it('the relay adds an operator to an enclave started for none: the report data no longer matches', async () => {
    const none = await enclaveFor(undefined);
    const v = await appraise(none.claim(OPERATOR_B), async (n) => ({
      ...(await none.attest(n)),
      operator: OPERATOR_B,
    }));
    expect(codes(v)).toContain('E_EVIDENCE_BINDING');
  });

  it('evidence of an enclave started for no operator registers for nobody (E_EVIDENCE_OPERATOR)', async () => {
    const none = await enclaveFor(undefined);
    const bundle = await none.attest(new Uint8Array(randomBytes(32)));
    expect(bundle.operator).toBeUndefined();
    const v = await appraise(none.claim(OPERATOR_A), none.attest);
    expect(v).toMatchObject({ approve: false, reasonCode: REFUSAL_CODES.E_EVIDENCE_OPERATOR });
    expect(v.approve ? '' : v.reasons[0]!.message).toMatch(/binds no operator/);
  });

  it('an identity mismatch is still named first, the operator beside it', async () => {
    const a = await enclaveFor(OPERATOR_A);
    const other = await enclaveFor(OPERATOR_A);
    const v = await appraise(a.claim(OPERATOR_B), other.attest);
    expect(v).toMatchObject({ approve: false, reasonCode: REFUSAL_CODES.E_IDENTITY_MISMATCH });
    expect(codes(v)).toContain('E_EVIDENCE_OPERATOR');
  });

  it('a bundle whose operator is not a 20-byte address is malformed', async () => {
    const a = await enclaveFor(OPERATOR_A);
    for (const operator of [`0x${'ab'.repeat(19)}`, `0x${'ab'.repeat(21)}`, 'zz', 42, null]) {
      const v = await appraise(a.claim(OPERATOR_A), async (n) => ({ ...(await a.attest(n)), operator }));
      expect(codes(v)).toEqual(['E_EVIDENCE_MALFORMED']);
    }
  });

  it('evidenceOperatorRefusal: equal in any case passes; absent or other is refused', () => {
    expect(
      evidenceOperatorRefusal({ operator: OPERATOR_A }, OPERATOR_A.toUpperCase() as Hex),
    ).toBeUndefined();
    expect(evidenceOperatorRefusal({}, OPERATOR_A)?.code).toBe('E_EVIDENCE_OPERATOR');
    expect(evidenceOperatorRefusal({ operator: OPERATOR_B }, OPERATOR_A)?.code).toBe('E_EVIDENCE_OPERATOR');
  });
});

describe('fetchEvidenceOverHttp asks for identity encoding (decision 1834)', () => {
  it('asks with accept-encoding: identity and refuses a compressed answer unread', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(String(req.headers['accept-encoding']));
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip, gzip' });
      res.end(gzipSync(gzipSync(Buffer.from('{}'))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await expect(
        fetchEvidenceOverHttp(url, new Uint8Array(32), 5000, { allowPrivateEndpoints: true }),
      ).rejects.toMatchObject({ code: 'E_UNAVAILABLE' });
      expect(seen).toEqual(['identity']);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
