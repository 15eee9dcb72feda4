import { describe, expect, it } from 'vitest';
import { LoopPoller, POLL_LEAD_MS, pollDelayMs, RecentDurations, RecentGaps } from './loopPoller.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LoopPoller: the event loop is kept turning for a bounded window', () => {
  it('timers and I/O callbacks still run while it polls', async () => {
    const p = new LoopPoller();
    p.pollFor(5_000);
    await sleep(10);
    await new Promise((r) => setImmediate(r));
    // The timer above ran inside the window (the window is still open and polled).
    expect(p.polling).toBe(true);
    expect(p.turns).toBeGreaterThan(0);
    p.stop();
  });

  it('polls for the window and stops by itself', async () => {
    const p = new LoopPoller();
    const t0 = performance.now();
    p.pollFor(60);
    expect(p.polling).toBe(true);
    while (p.polling) await sleep(5);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(59);
    const turns = p.turns;
    await sleep(30);
    expect(p.turns).toBe(turns);
  });

  it('stops at the first turn on which it is no longer wanted, or on stop()', async () => {
    let wanted = true;
    const p = new LoopPoller(() => wanted);
    p.pollFor(10_000);
    await sleep(5);
    wanted = false;
    await sleep(5);
    expect(p.polling).toBe(false);
    const q = new LoopPoller();
    q.pollFor(10_000);
    await sleep(5);
    q.stop();
    await sleep(5);
    expect(q.polling).toBe(false);
    const t = q.turns;
    await sleep(10);
    expect(q.turns).toBe(t);
  });

  it('a later, longer window extends the open one; zero, negative and non-finite windows open none', async () => {
    const p = new LoopPoller();
    p.pollFor(10);
    p.pollFor(60);
    await sleep(30);
    expect(p.polling).toBe(true);
    p.stop();
    for (const ms of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const q = new LoopPoller();
      q.pollFor(ms);
      expect(q.polling).toBe(false);
      await sleep(2);
      expect(q.turns).toBe(0);
    }
  });
});

describe('RecentGaps: polling only when the next message is likely within the window', () => {
  it('fits until three gaps are known, then by the median of the latest eight', () => {
    const g = new RecentGaps();
    let t = 0;
    const exchange = (gap: number) => {
      g.answered(t);
      t += gap;
      g.arrived(t);
      t += 1;
    };
    exchange(100);
    exchange(100);
    expect(g.fits(20)).toBe(true);
    exchange(100);
    expect(g.fits(20)).toBe(false);
    expect(g.fits(100)).toBe(true);
    // Traffic picks up: once most of the latest eight gaps are short, it fits again.
    for (let i = 0; i < 3; i++) exchange(2);
    expect(g.fits(20)).toBe(false);
    exchange(2);
    expect(g.fits(20)).toBe(true);
    for (let i = 0; i < 8; i++) exchange(2);
    expect(g.fits(1)).toBe(false);
    expect(g.fits(2)).toBe(true);
  });

  it('a message with no answer before it (the first, or pipelined) adds no gap', () => {
    const g = new RecentGaps();
    for (let i = 0; i < 5; i++) g.arrived(i * 1000);
    expect(g.fits(0)).toBe(true);
    g.answered(0);
    g.arrived(500);
    g.arrived(900);
    expect(g.fits(0)).toBe(true);
  });
});

describe('LoopPoller: a delayed window sleeps until shortly before the message is due', () => {
  it('polls nothing before its start, then for its length, then stops', async () => {
    const p = new LoopPoller();
    const t0 = performance.now();
    p.pollFor(40, 60);
    expect(p.polling).toBe(false);
    await sleep(30);
    expect(p.turns).toBe(0);
    while (!p.polling && performance.now() - t0 < 2_000) await sleep(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(59);
    while (p.polling) await sleep(5);
    // The window ran its length from its start, not from the call.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(99);
    expect(p.turns).toBeGreaterThan(0);
    const turns = p.turns;
    await sleep(30);
    expect(p.turns).toBe(turns);
  });

  it('stop() cancels a start still pending; a window being polled is never paused by a delayed call', async () => {
    const p = new LoopPoller();
    p.pollFor(30, 20);
    p.stop();
    await sleep(70);
    expect(p.turns).toBe(0);
    const q = new LoopPoller();
    q.pollFor(200);
    q.pollFor(10, 100);
    await sleep(20);
    expect(q.polling).toBe(true);
    const turns = q.turns;
    await sleep(20);
    expect(q.turns).toBeGreaterThan(turns);
    q.stop();
  });

  it('of two delayed starts the earlier wins; a delay under a millisecond starts at once', async () => {
    const p = new LoopPoller();
    p.pollFor(30, 500);
    p.pollFor(30, 20);
    await sleep(40);
    expect(p.turns).toBeGreaterThan(0);
    p.stop();
    const q = new LoopPoller();
    q.pollFor(30, 0.5);
    expect(q.polling).toBe(true);
    q.stop();
  });
});

describe('pollDelayMs and RecentDurations', () => {
  it('starts POLL_LEAD_MS before the shortest recent duration, at once when unknown or near', () => {
    expect(pollDelayMs(undefined)).toBe(0);
    expect(pollDelayMs(10)).toBe(10 - POLL_LEAD_MS);
    expect(pollDelayMs(10, 4)).toBe(10 - 4 - POLL_LEAD_MS);
    expect(pollDelayMs(10, 9)).toBe(0);
    expect(pollDelayMs(1)).toBe(0);
  });

  it('knows nothing until three durations, then the least and the median of the latest ones', () => {
    const d = new RecentDurations(4);
    d.add(5);
    d.add(Number.NaN);
    d.add(3);
    expect(d.shortest()).toBeUndefined();
    expect(d.median()).toBeUndefined();
    d.add(-1);
    expect(d.shortest()).toBe(0);
    expect(d.median()).toBe(3);
    for (const ms of [7, 8, 9, 10]) d.add(ms);
    expect(d.shortest()).toBe(7);
    expect(d.median()).toBe(9);
  });
});
