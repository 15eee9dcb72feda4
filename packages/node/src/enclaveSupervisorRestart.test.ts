import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnclaveSupervisor, RESTART_STEP_MS } from './enclaveSupervisor.ts';
import { createLogger } from './logger.ts';

// A stand-in enclave entry that lives as long as `lifetime.txt` next to it says, then crashes.
const dir = mkdtempSync(join(tmpdir(), 'firn-sup-restart-'));
const entry = join(dir, 'crasher.mjs');
const lifetime = join(dir, 'lifetime.txt');
writeFileSync(
  entry,
  `import { readFileSync } from 'node:fs';
const ms = Number(readFileSync(${JSON.stringify(lifetime)}, 'utf8'));
setTimeout(() => process.exit(3), ms);
process.stdin.resume();
`,
);

describe('enclave restart back-off', () => {
  it('grows with crashes in a row and starts over after a healthy run', async () => {
    writeFileSync(lifetime, '0');
    const sup = new EnclaveSupervisor({
      bundlePath: entry,
      env: {},
      logger: createLogger({}, { write: () => undefined }),
      healthyAfterMs: 1500,
    });
    const delays: number[] = [];
    sup.on('exit', () => setImmediate(() => delays.push(sup.lastRestartDelayMs)));
    sup.start();
    try {
      await until(() => delays.length >= 3);
      expect(delays.slice(0, 3)).toEqual([RESTART_STEP_MS, 2 * RESTART_STEP_MS, 3 * RESTART_STEP_MS]);
      // The next run is healthy (longer than healthyAfterMs) before it crashes: back to the first step.
      writeFileSync(lifetime, '1800');
      await until(() => delays.length >= 5, 15_000);
      expect(delays[4]).toBe(RESTART_STEP_MS);
    } finally {
      await sup.stop();
    }
  }, 30_000);
});

async function until(f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
