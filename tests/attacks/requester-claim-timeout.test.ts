import { createFirnClients, firnJobMarketAbi, getJob, JobStatus, reclaimJob } from '@firn/chain';
import { runJob } from '@firn/client';
import type { Hex } from '@firn/core';
import { generateKemKeyPair } from '@firn/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyLinearModel } from '../../packages/enclave/test/testModels.ts';
import { increaseTime, inferenceJobOptions, startTestNetwork, type TestNetwork } from '../e2e/network.ts';

// A greedy requester posts a job whose claim timeout is too short for any enclave run, hands it
// to an honest node, and reclaims the moment the node's claim lapses: the node's claim bond is
// credited to the requester while the node is still computing. Claim bonds exist to make a
// griefing *claimant* pay (docs/decisions/0800-economics.md), not to let a requester take an
// honest node's bond: the node must not claim a job it cannot prove within the claim timeout.
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork();
}, 120_000);
afterAll(() => net?.stop());

const model = tinyLinearModel({ inFeatures: 3, outFeatures: 2, seed: 5 });

describe('attack: a requester takes an honest node its claim bond with a one-second claim timeout', () => {
  it('the honest node loses no bond to a claim timeout it could never meet', async () => {
    const kem = await generateKemKeyPair();
    const requester = createFirnClients(net.anvil.rpcUrl, net.requester.privateKey, net.deployment, {
      pollingIntervalMs: 50,
    });
    let jobId: Hex | undefined;
    let forfeited = false;
    const attack = (async () => {
      for (let i = 0; i < 400; i++) {
        if (jobId !== undefined) {
          const j = await getJob(requester, jobId);
          if (j.status === JobStatus.Claimed) {
            await increaseTime(net.anvil.rpcUrl, 2);
            const before = await requester.public.readContract({
              address: net.deployment.jobMarket,
              abi: firnJobMarketAbi,
              functionName: 'totalBonds',
            });
            await reclaimJob(requester, jobId);
            const after = await requester.public.readContract({
              address: net.deployment.jobMarket,
              abi: firnJobMarketAbi,
              functionName: 'totalBonds',
            });
            forfeited = after < before;
            return;
          }
          if (j.status !== JobStatus.Open) return;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    await runJob(
      inferenceJobOptions(net, kem, model.bytes, {
        escrow: 1n,
        claimTimeoutSeconds: 1,
        onPosted: (id) => {
          jobId = id;
        },
      }),
    ).catch(() => undefined);
    await attack;
    expect(jobId).toBeDefined();
    expect(forfeited, "the node's bond was forfeited").toBe(false);
  });
});
