/**
 * Entry of the DCAP collateral worker thread (decision 1380): for each job, the collateral half
 * of a cold verification, exactly as the calling thread's synchronous path makes it (chains to
 * the pinned Intel root, TCB info and QE identity signatures, both CRL signatures, in the same
 * order, first failure reported), then every cache of inputs cleared. Replies carry plain data.
 */
import { parentPort } from 'node:worker_threads';
import { FirnError } from '@firn/core';
import type { WorkerJob, WorkerReply } from './collateralWorkerClient.ts';
import { prepareDetached } from './verifyDcapQuote.ts';

const port = parentPort;
if (port !== null)
  port.on('message', (job: WorkerJob) => {
    let reply: WorkerReply;
    try {
      reply = { id: job.id, ok: true, prepared: prepareDetached(job.collateral, job.roots) };
    } catch (e) {
      reply =
        e instanceof FirnError
          ? { id: job.id, ok: false, code: e.code, message: e.message }
          : { id: job.id, ok: false, code: 'E_INTERNAL', message: 'the collateral could not be checked' };
    }
    port.postMessage(reply);
  });
