import { createFirnClients, firnJobMarketAbi, getJob, JobStatus } from '@firn/chain';
import type { Hex } from '@firn/core';
import { decodeEventLog, keccak256 } from 'viem';
import { describe, expect, it } from 'vitest';
import { setupCliInferOverProxy } from './cliInferOverProxy.ts';

// A careless user presses Ctrl-C while `firn infer` is posting its job: the postJob transaction is
// sent (and mined), and the CLI waits for its receipt, as it does for one block on any real chain
// (12 s on Ethereum). README: "Ctrl-C (or SIGTERM, SIGHUP) while `firn infer|train|run` has a job
// on chain loses nothing: a job no node claimed yet is reclaimed (escrow refunded) before the
// command exits". But the interrupt guard (packages/cli/src/jobInterrupt.ts) learns the job only
// from runJob's onPosted, which runs after the receipt and one more getBlock
// (packages/client/src/runJob.ts, runOnNode): before that a signal "ends the process at once". The
// job stays Open with its escrow, nothing names it (no journal entry, no job id printed), and no
// node will ever claim it (none was sent the request).
//
// The RPC here is a proxy to the network's anvil that, once the requester's transaction went
// through, answers eth_getTransactionReceipt with null (not mined yet), as a chain does until the
// next block.
const sent: Hex[] = [];
const s = setupCliInferOverProxy('postint', (m) => {
  if (m.method === 'eth_sendRawTransaction') {
    sent.push(keccak256(m.params![0] as Hex));
    return undefined;
  }
  if (m.method === 'eth_getTransactionReceipt' && sent.length > 0)
    return { jsonrpc: '2.0', id: m.id, result: null };
  return undefined;
});

describe('attack: Ctrl-C while firn infer posts its job', () => {
  it('the posted job is reclaimed before the command exits, or its id and the reclaim command are printed', async () => {
    const { child: c, output, exited } = s.spawnInfer('out.json');
    const t0 = Date.now();
    while (sent.length === 0 && Date.now() - t0 < 90_000 && c.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    expect(sent.length, output()).toBeGreaterThan(0);
    // The user gives up on "posting" after a moment.
    await new Promise((r) => setTimeout(r, 1500));
    c.kill('SIGINT');
    const killer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(killer);

    const reader = createFirnClients(s.net.anvil.rpcUrl, undefined, s.net.deployment);
    const stderr = output();
    const receipt = await reader.public.getTransactionReceipt({ hash: sent[0]! });
    const posted = receipt.logs
      .map((l) => {
        try {
          return decodeEventLog({ abi: firnJobMarketAbi, data: l.data, topics: l.topics });
        } catch {
          return undefined;
        }
      })
      .find((e) => e?.eventName === 'JobPosted');
    expect(posted, 'the interrupted postJob transaction was mined').toBeDefined();
    const jobId = (posted!.args as { jobId: Hex }).jobId;
    const job = await getJob(reader, jobId);
    const told = stderr.toLowerCase().includes(jobId.toLowerCase());
    expect(
      { code, reclaimedOrNamed: job.status !== JobStatus.Open || told },
      `job ${jobId} is ${JobStatus[job.status]} with escrow ${job.escrow} wei after the CLI exited; stderr:\n${stderr}`,
    ).toEqual({ code: 130, reclaimedOrNamed: true });
  }, 180_000);
});
