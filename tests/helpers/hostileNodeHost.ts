import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FirnError, type Hex } from '@firn/core';
import { afterEach, expect } from 'vitest';

/** A job id for answers that never reach a chain (0xabab…). */
export const FAKE_JOB = `0x${'ab'.repeat(32)}` as Hex;
/** A 32-byte value standing for every id and digest of FAKE_PROOF (0xcdcd…). */
export const FAKE_ID = `0x${'cd'.repeat(32)}` as Hex;

/**
 * A Work Proof of FAKE_JOB in the shape a node relays it (well-formed, never checked against a
 * chain): for answers whose proof only has to parse.
 */
export const FAKE_PROOF = {
  proof: {
    jobId: FAKE_JOB,
    enclaveId: FAKE_ID,
    measurement: FAKE_ID,
    workloadHash: FAKE_ID,
    inputCommitment: FAKE_ID,
    outputCommitment: FAKE_ID,
    startedAt: '1',
    finishedAt: '2',
    workUnits: '3',
  },
  signature: `0x${'11'.repeat(65)}`,
  chainId: 31337,
  jobMarket: `0x${'22'.repeat(20)}`,
  enclaveAddress: `0x${'33'.repeat(20)}`,
};

/**
 * A local HTTP server that plays a hostile node, for the calling test file: `host(answer)` starts
 * one answering every request with `answer` and returns its URL and the requests it got (`METHOD
 * path`, in order); a second `host` in one test closes the first. After each test its
 * connections are cut (a host still writing an endless body cannot hold the close) and it is closed.
 */
export function useHostileHost(): {
  host: (
    answer: (req: IncomingMessage, res: ServerResponse) => void,
  ) => Promise<{ url: string; asked: string[] }>;
} {
  let server: Server | undefined;
  const close = async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r) ?? r(undefined));
    server = undefined;
  };
  afterEach(close);
  return {
    async host(answer) {
      await close();
      const asked: string[] = [];
      server = createServer((req, res) => {
        asked.push(`${req.method} ${req.url}`);
        answer(req, res);
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, asked };
    },
  };
}

/** The error `p` rejects with, asserted to be a FirnError (a resolved `p` fails the test). */
export async function errorOf(p: Promise<unknown>): Promise<FirnError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(FirnError);
  return e as FirnError;
}
