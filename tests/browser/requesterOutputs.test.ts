import { computeOutputCommitment, type Hex } from '@firn/core';
import { artifactId, generateKemKeyPair, sealArtifact } from '@firn/crypto';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../../apps/dashboard/src/network.ts';
import { openRequesterOutputs, outputCommitmentOf } from '../../apps/dashboard/src/requesterOutputs.ts';

/**
 * The page opens a requester's outputs only when they are the ones the job's proof committed to on
 * chain: a node (or the dashboard relaying it) that serves other outputs, or other bytes under an
 * output's id, is refused before anything is shown.
 */
describe('requester outputs in the dashboard', () => {
  const enc = new TextEncoder();
  const history = [1, 2, 3].map((epoch) => ({ epoch, loss: 1 / epoch, valLoss: 1.1 / epoch }));

  async function setup() {
    const me = await generateKemKeyPair();
    const metrics = await sealArtifact(enc.encode(JSON.stringify({ history, heldOut: { accuracy: 0.9 } })), {
      recipients: [me.publicKey],
      contentType: 'application/json',
    });
    const weights = await sealArtifact(new Uint8Array(5000).fill(7), {
      recipients: [me.publicKey],
      contentType: 'application/safetensors',
    });
    const outputs = [
      {
        role: 'weights',
        artifactId: artifactId(weights) as Hex,
        sealed: Buffer.from(weights).toString('base64'),
      },
      {
        role: 'metrics',
        artifactId: artifactId(metrics) as Hex,
        sealed: Buffer.from(metrics).toString('base64'),
      },
    ];
    const job = {
      jobId: `0x${'ab'.repeat(32)}`,
      enclaveId: `0x${'cd'.repeat(32)}`,
      outputCommitment: computeOutputCommitment(outputs),
    } as unknown as JobView;
    const serve =
      (outs: unknown[], seen: string[] = []): typeof fetch =>
      async (input) => {
        seen.push(String(input));
        return new Response(JSON.stringify({ outputs: outs }), { status: 200 });
      };
    return { me, outputs, job, serve, metrics };
  }

  it('computes the output commitment exactly as @firn/core does', async () => {
    const { outputs } = await setup();
    expect(outputCommitmentOf(outputs)).toBe(computeOutputCommitment(outputs));
  });

  it('opens the committed outputs and reads the loss curve; a stranger’s key sees nothing', async () => {
    const { me, outputs, job, serve } = await setup();
    const seen: string[] = [];
    const r = await openRequesterOutputs(job, me.privateKey, serve(outputs, seen));
    expect(r?.history).toEqual(history);
    expect(r?.heldOutAccuracy).toBe(0.9);
    expect(r?.outputs.map((o) => o.role)).toEqual(['weights', 'metrics']);
    expect(seen).toEqual([`/node/${job.enclaveId}/v1/jobs/${job.jobId}/result`]);
    const stranger = await generateKemKeyPair();
    expect(await openRequesterOutputs(job, stranger.privateKey, serve(outputs))).toBeUndefined();
  });

  it('refuses outputs the proof did not commit to (a node substituting its own metrics)', async () => {
    const { me, outputs, job, serve } = await setup();
    const fake = await sealArtifact(
      enc.encode(JSON.stringify({ history: [{ epoch: 1, loss: 0, valLoss: 0 }] })),
      {
        recipients: [me.publicKey],
        contentType: 'application/json',
      },
    );
    const swapped = [
      outputs[0]!,
      { role: 'metrics', artifactId: artifactId(fake) as Hex, sealed: Buffer.from(fake).toString('base64') },
    ];
    await expect(openRequesterOutputs(job, me.privateKey, serve(swapped))).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
    // dropping an output changes the commitment too
    await expect(openRequesterOutputs(job, me.privateKey, serve([outputs[1]!]))).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
  });

  it('refuses other bytes served under a committed id', async () => {
    const { me, outputs, job, serve, metrics } = await setup();
    const altered = metrics.slice();
    altered[altered.length - 1]! ^= 1;
    const bad = [outputs[0]!, { ...outputs[1]!, sealed: Buffer.from(altered).toString('base64') }];
    await expect(openRequesterOutputs(job, me.privateKey, serve(bad))).rejects.toMatchObject({
      code: 'E_ARTIFACT_TAMPERED',
    });
  });
});
