import { sealInput } from '@firn/client';
import type { FirnDeployment } from '@firn/chain';
import { bytesToHex, type Hex, parseJobRequest, utf8 } from '@firn/core';
import { generateKemKeyPair, generateSigningKey } from '@firn/crypto';
import { runWorkload } from '@firn/app/testing';
import { describe, expect, it } from 'vitest';
import { grantForJob, type JobPlan } from '../../packages/client/src/grantForJob.ts';
import cleanRoom from '../../examples/clean-room/src/index.ts';

// A requester in a clean-room job (examples/clean-room: "two parties learn only the size of the
// overlap of their ID lists") lists the other owner's artifact under BOTH roles: left = bob, right =
// bob. The job request accepts two roles with one artifact id, the enclave finds one grant for both
// inputs (verifyRequestGrants matches grants by artifact id), and the owner's checks
// (grantForJob) look only at the role it grants: bob's grant for `right` opens his list as `left`
// too. The app returns |bob ∩ bob| = the size of bob's list, which the clean room promises to hide;
// any app that compares or combines two owners' inputs is open to the same self-join.
const ids = (n: number, p: string) => Array.from({ length: n }, (_, i) => `${p}${i}`).join('\n');

describe('an owner’s artifact under two roles of one job', () => {
  it('the self-join leaks the other owner’s list size through the clean room (what is at stake)', async () => {
    const bob = utf8(ids(37, 'bob-'));
    const r = await runWorkload(cleanRoom, 'overlap', { inputs: { left: bob, right: bob } });
    const out = JSON.parse(new TextDecoder().decode(r.outputs[0]!.bytes)) as { overlap: number };
    expect(out.overlap).toBe(37);
  });

  it('a job request that names one artifact under two roles is refused', () => {
    const artifactId = bytesToHex(new Uint8Array(32).fill(5));
    const request = {
      v: 1,
      jobId: bytesToHex(new Uint8Array(32).fill(1)),
      kind: 'overlap',
      inputs: [
        { role: 'left', artifactId },
        { role: 'right', artifactId },
      ],
      grants: [],
      params: {},
      resultRecipient: bytesToHex(new Uint8Array(32).fill(2)),
      chainId: 31337,
      jobMarket: `0x${'aa'.repeat(20)}`,
    };
    expect(() => parseJobRequest(utf8(JSON.stringify(request)))).toThrow(/artifact/);
  });

  it('an owner refuses to grant a plan that lists its artifact under another role too', async () => {
    const owner = await generateKemKeyPair();
    const sealed = await sealInput(utf8(ids(37, 'bob-')), 'text/plain', owner.publicKey);
    const deployment = { chainId: 31337, jobMarket: `0x${'aa'.repeat(20)}` } as unknown as FirnDeployment;
    const plan: JobPlan = {
      v: 1,
      chainId: 31337,
      jobMarket: deployment.jobMarket,
      jobId: bytesToHex(new Uint8Array(32).fill(1)),
      enclaveId: bytesToHex(new Uint8Array(32).fill(3)),
      endpoint: 'http://127.0.0.1:9',
      app: bytesToHex(new Uint8Array(32).fill(4)),
      workload: 'overlap',
      params: {},
      inputs: [
        { role: 'left', artifactId: sealed.artifactId },
        { role: 'right', artifactId: sealed.artifactId },
      ],
      resultRecipient: bytesToHex(new Uint8Array(32).fill(2)),
      expiresAt: Math.floor(Date.now() / 1000) + 600,
    } as JobPlan;
    let refused: unknown;
    try {
      await grantForJob({
        rpcUrl: 'http://127.0.0.1:9',
        deployment,
        plan,
        role: 'right',
        sealed: sealed.sealed,
        kemPrivateKey: owner.privateKey,
        ownerKey: bytesToHex(generateSigningKey().privateKey) as Hex,
        policy: {} as never,
      });
    } catch (e) {
      refused = e;
    }
    // Refused for what the plan says, before any attestation or chain read.
    expect(refused).toMatchObject({ message: expect.stringMatching(/more than one input|two roles|once/) });
  });
});
