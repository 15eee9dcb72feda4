import { describe, expect, it } from 'vitest';
import { SessionService } from '../../packages/node/src/jobs/sessionApi.ts';
import { fakeOpenRequest, fakeSessionJobService, validSessionOpen } from './fakeSessionJobService.ts';
import { sessionProgramHarness } from './sessionProgramHarness.ts';

// Attack (host misconfiguration racing an open; decision 1800 "Checked at every entry": "bounds
// are read when used: a window changed out of range is the node's error, E_UNAVAILABLE, before any
// slot is reserved or job claimed"). SessionService.openSession checks `this.bounds.pollMs` once,
// before the pre-flight, then awaits the pre-flight (up to PREFLIGHT_TIMEOUT_MS), the inputs and
// the claim (the chain's write queue: seconds), and reads `this.bounds.pollMs` AGAIN when it
// calls the enclave's openSession. A window changed out of range meanwhile (the operator's code
// narrowing or mis-setting the live bounds while a requester's open is in flight) is never
// checked by the host: the job is claimed on chain, the enclave refuses the open
// (E_INVALID_INPUT naming pollMs, the requester's own option's name), and the node sends failJob:
// two chain writes and a failed job for a value the node would have refused before anything.
//
// Secure outcome: the open uses the window it checked (one read), or a change is refused before
// the claim: no failJob after a claim, and no refusal naming "pollMs" to the requester.

const { program, identity, dir } = await sessionProgramHarness('rt-hostpoll2', 43);

describe('the host reads its poll window once per open', () => {
  it('a window changed out of range during the pre-flight leads to no claim that is then failed', async () => {
    const open = await validSessionOpen(dir, identity, 'rt-hostpoll2', 43);
    let sessions: SessionService | undefined;
    // While the pre-flight is in flight, the operator's code sets the live window out of range (5 s).
    const { service, log } = fakeSessionJobService(program, identity, dir, open, () => {
      sessions!.bounds.pollMs = 5_000;
    });
    sessions = new SessionService(service as never);
    expect(sessions.bounds.pollMs).toBe(20);
    const outcome = await sessions
      .openSession(fakeOpenRequest(), { ...open.built.body })
      .then(() => 'opened')
      .catch((e: unknown) => e);
    sessions.stopSweeper();
    expect(log.enclaveCalls[0]).toBe('preflightSession');
    // Either the open went through with the window the node checked (20 ms), or it was refused
    // before the claim; never claimed and then failed for the host's own setting.
    const said =
      outcome === 'opened'
        ? 'opened'
        : `${(outcome as { code?: string }).code}: ${(outcome as Error).message}`;
    expect(log.chainWrites, `chain writes; the open: ${said}`).not.toContain('failJob');
  });
});
