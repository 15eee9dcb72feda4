import { LoopPoller } from '@firn/core';
import { describe, expect, it } from 'vitest';

// Attack (careless SDK user / any caller of @firn/core's LoopPoller; decision 1800's amendment):
// `pollFor(ms, startInMs)` "sleeps as usual until then and polls for `ms` from then on", and "every
// call costs at most `ms` of polling beyond what was already due". The delayed start is a plain
// `setTimeout(begin, Math.floor(startInMs))`: Node fires a timer whose delay is over 2^31 - 1 ms
// (about 24.8 days) after 1 ms (TimeoutOverflowWarning). `begin` then sets the window's end to
// the far-away start plus `ms`, so a call asking for 20 ms of polling in 25 days starts spinning
// the core 1 ms later and never stops by itself (until `wanted()` turns false or `stop()`).
//
// The SessionStream guards its own timers against exactly this (MAX_TIMER_MS for the request
// deadline; 1800 "Node fires a longer timer after 1 ms"), but its poll delay comes from the
// answers' own durations, which a requestTimeoutMs of up to 2^31 - 1 ms lets reach the same range.
//
// Secure outcome: a start beyond what a timer holds polls nothing now (it is re-armed in steps,
// or the call opens nothing): no turns at all in the first 150 ms.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LoopPoller: a delayed start over the timer range', () => {
  for (const startInMs of [2 ** 31, 30 * 24 * 3600 * 1000]) {
    it(`pollFor(20, ${startInMs}) polls nothing in the next 150 ms`, async () => {
      const p = new LoopPoller();
      const warn = process.emitWarning;
      // Node's TimeoutOverflowWarning is not what is checked; keep the output quiet.
      process.emitWarning = () => undefined;
      try {
        p.pollFor(20, startInMs);
        await sleep(150);
        expect(p.turns, `turns polled within 150 ms of a window due in ${startInMs} ms`).toBe(0);
        expect(p.polling).toBe(false);
      } finally {
        p.stop();
        process.emitWarning = warn;
      }
    });
  }
});
