import { describe, expect, it } from 'vitest';
import { SessionService } from '../../packages/node/src/jobs/sessionApi.ts';
import { fakeOpenRequest, fakeSessionJobService, validSessionOpen } from './fakeSessionJobService.ts';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// Attack (host misconfiguration / careless operator, decision 1800). The session poll window is
// checked at the daemon's entry (NodeDaemonOptions.scheduler.sessionPollMs) and by the enclave's
// `openSession`, but not by JobApiOptions.sessionBounds / SessionService (exported from
// @firn/node, "read when used, so tests may narrow them"), and the host's `preflightSession` is
// sent WITHOUT pollMs. So a node whose bounds carry an out-of-range window (5 000 ms here; NaN or
// '20' alike) passes the pre-flight, CLAIMS every session job on chain, and only then is refused
// by the enclave's `openSession` (E_INVALID_INPUT "pollMs must be an integer number of ms, 0 to
// 1000"), after which it sends failJob: two chain writes per open for a value known bad before
// anything was claimed, every requester's job failed, and the requester is shown a refusal naming
// "pollMs", the name of its own openInferenceSession option, for a setting that is the host's.
// Secure outcome: the bad window is refused at the host's entry (naming the field) or at the
// pre-flight, before any chain write.

const { program, identity, dir } = await sessionProgramHarness('rt-hostpoll', 41);

describe('a host session poll window out of range is refused before any reservation or claim', () => {
  it('an out-of-range SessionBounds.pollMs never leads to a claim on chain', async () => {
    const open = await validSessionOpen(dir, identity, 'rt-hostpoll', 41);
    // The node's job service as the session service uses it; the enclave is the real session program.
    const { service, log } = fakeSessionJobService(program, identity, dir, open);
    // Refused at the host's own entry, naming the field.
    expect(() => new SessionService(service as never, undefined, { pollMs: 5_000 })).toThrow(
      /SessionBounds\.pollMs/,
    );
    for (const pollMs of [-1, 2.5, Number.NaN, '20'])
      expect(() => new SessionService(service as never, undefined, { pollMs } as never)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_INPUT' }),
      );
    // Bounds are read when used: a window changed to one out of range after construction is
    // refused at the open, as the node's own error, before the pre-flight reserves or claims anything.
    const sessions = new SessionService(service as never);
    sessions.bounds.pollMs = 5_000;
    const req = fakeOpenRequest();
    const refusal = await sessions
      .openSession(req, { ...open.built.body })
      .then(() => undefined)
      .catch((e: unknown) => e);
    sessions.stopSweeper();
    expect(refusal).toMatchObject({
      code: 'E_UNAVAILABLE',
      message: expect.stringMatching(/SessionBounds\.pollMs/),
    });
    expect(log).toEqual({ chainWrites: [], enclaveCalls: [] });
    // With the window back in range the same open passes the pre-flight and claims.
    sessions.bounds.pollMs = 20;
    await sessions.openSession(req, { ...open.built.body }).catch(() => undefined);
    sessions.stopSweeper();
    expect(log.enclaveCalls[0]).toBe('preflightSession');
    expect(log.chainWrites[0]).toBe('claimJob');
  });
});
