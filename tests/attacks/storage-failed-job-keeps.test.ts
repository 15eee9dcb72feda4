import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FirnJob, JobStatus } from '@firn/chain';
import { computeInputCommitment, FirnError, type Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_ARTIFACT_RETENTION } from '../../packages/node/src/storage/artifactRetention.ts';
import { STORAGE_BLOCK_BYTES as K } from '../../packages/node/src/storage/quota.ts';
import {
  addressOfKey as addressOf,
  artifactIdOf as idOf,
  storageService as service,
  uploadAs as upload,
} from '../helpers/storageService.ts';

// The attack (red team): a job's artifacts live `retention.outputSeconds` (7 days) after the job
// is final on the node's record, and `failed` is final (decision 1603, 3.). A job the enclave
// refuses at pre-flight (a request that does not open, grants that fail) is recorded `failed`
// without ever being claimed. So an attacker posts a job of its own whose input commitment lists
// a victim's uploads (ids are public: GET /v1/artifacts/{id}), with the node's minimum escrow
// (1 wei) and the shortest deadline it takes, and submits it with any request: the pre-flight
// refuses it, no claim, no gas for the node, and the attacker reclaims its escrow after the
// deadline. The failed record names the victim's uploads, which are now kept 7 days past its
// failure, their charge still the victim's. Once a week, for the gas of a post and a reclaim, the
// victim's quota stays taken for good. Decision 1603 ("Not done") prices this at "a posted job
// with escrow" kept "until that job expires"; here the job expires at once and costs no escrow.
// Promise (decision 1603, docs/api.md "Retention"): an upload is deleted `retention.uploadSeconds`
// after it and its charge released; only a job that ran (a result someone may need) keeps more.

const dir = mkdtempSync(join(tmpdir(), 'firn-failed-job-keeps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Made-up test keys (a repeated byte), never a real account's.
const ATTACKER_KEY = `0x${'a1'.repeat(32)}` as Hex;
const VICTIM_KEY = `0x${'b2'.repeat(32)}` as Hex;

const UPLOAD = DEFAULT_ARTIFACT_RETENTION.uploadSeconds;

describe("attack: keep a victim's uploads with jobs refused at pre-flight", () => {
  it("a job failed before any claim does not keep the victim's uploads past their upload retention", async () => {
    const clock = { now: 1_900_000_000 };
    const svc = service(join(dir, 'preflight'), clock);
    // The enclave refuses the attacker's request at pre-flight (it holds no grant for these inputs).
    const supervisor = svc.node.supervisor as unknown as {
      call: (m: string, a: unknown) => Promise<unknown>;
    };
    const call = supervisor.call.bind(supervisor);
    supervisor.call = async (m: string, a: unknown) => {
      if (m === 'preflightJob') throw new FirnError('E_GRANT_INVALID', 'no grant for this input');
      return call(m, a);
    };
    const victim = addressOf(VICTIM_KEY);
    const bodies = Array.from({ length: 4 }, () => randomBytes(4 * K));
    for (const b of bodies) expect((await upload(svc, VICTIM_KEY, b, clock)).status).toBe(201);
    expect(svc.quota.usedBy(victim)).toBe(16 * K);
    const ids = bodies.map(idOf);

    // A minute before the uploads expire, the attacker's job naming them: 1 wei, a short deadline.
    clock.now += UPLOAD - 60;
    const jobId = `0x${'5b'.repeat(32)}` as Hex;
    const onChain = {
      requester: addressOf(ATTACKER_KEY),
      status: JobStatus.Open,
      escrow: 1n,
      claimTimeout: 60n,
      deadline: BigInt(clock.now + 120),
      inputCommitment: computeInputCommitment(ids),
      teeTypeMask: 0xff,
      allowedMeasurements: [],
      workloadHash: `0x${'00'.repeat(32)}`,
    } as unknown as FirnJob;
    // The submission as the HTTP layer hands it over; the signature check stands in for a valid
    // one by the attacker (the job's requester).
    (svc as unknown as { authorizeSubmission: () => Promise<FirnJob> }).authorizeSubmission = async () =>
      onChain;
    const req = { headers: {}, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
    const res = { writeHead: () => undefined, end: () => undefined } as unknown as ServerResponse;
    await svc.submit(req, res, { jobId, enc: `0x${'00'.repeat(32)}`, ciphertext: 'AAAA', inputs: ids });
    for (let i = 0; i < 200 && svc.jobs.get(jobId)?.status !== 'failed'; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(svc.jobs.get(jobId)).toMatchObject({ status: 'failed' });
    expect(svc.jobs.get(jobId)?.txs?.claim).toBeUndefined();

    // The uploads' own retention ends, and the submission's hold (an hour from its check, decision
    // 1603, 4.) with it: they go, and the victim's quota is back.
    clock.now += 60;
    for (let minute = 0; minute < 62; minute++) {
      svc.sweepArtifacts();
      clock.now += 60;
    }
    for (const id of ids) expect(svc.artifacts.has(id)).toBe(false);
    expect(svc.quota.usedBy(victim)).toBe(0);
    svc.stop();
  });
});
