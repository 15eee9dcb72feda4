import { describe, expect, it } from 'vitest';
import { FairInFlightCap } from '../../packages/node/src/http/limits.ts';

// R6 red team, decisions 1740 and 1742. 1740 says that when many addresses together hold every
// attestation place "a verifier waits behind one quote per place at most, and is served in arrival
// order with them", and 1742 relies on that to call a busy node "a delay for the verifier, not a
// refusal". But the WAITING queue has a global cap (64) that is shared first-come: 32 stranger
// clients (32 IPv6 /64s, i.e. one /59, or 32 IPv4 addresses) with 2 waiting requests each fill it,
// and a verifier that holds no place and waits for none is then refused at once (429), never
// queued. Kept full (each waiter lives 5 s; the strangers resend), the verifier's every try is a
// 429: under 1742 it casts no vote and backs off up to 300 s, so an honest registration stays
// Pending for as long as the strangers keep it up (and its fee is lost if the operator gives up).
// Safe outcome: a client holding no place and waiting for none gets a place after at most one
// quote per place (a newcomer takes the waiting place of the client with the most waiting/held).
describe('FairInFlightCap: a full waiting queue', () => {
  it('a verifier holding nothing is served after one quote, not refused', async () => {
    const cap = new FairInFlightCap(4, 2, 'attestations');
    const releases: (() => void)[] = [];
    // Two strangers hold every place.
    for (const c of ['s0', 's0', 's1', 's1']) releases.push(await cap.enter(c));
    // 32 more stranger clients wait, 2 each: the 64 waiting places are taken.
    const waiters: Promise<unknown>[] = [];
    for (let i = 2; i < 34; i++)
      for (let k = 0; k < 2; k++) waiters.push(cap.enter(`s${i}`).catch(() => undefined));
    expect(cap.queued).toBe(64);

    const verifier = cap.enter('verifier').then(
      () => 'served',
      (e: unknown) => `refused: ${(e as Error).message}`,
    );
    // One quote ends: its place should go to the client holding none that came to wait.
    releases[0]!();
    const outcome = await Promise.race([
      verifier,
      new Promise((r) => setTimeout(() => r('still waiting'), 200)),
    ]);
    expect(outcome).toBe('served');
  });
});
