import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';

// Attack: the ML children's private scratch folders (HOME/TMPDIR, decision 1550 #3) are removed
// on the child's 'exit' event, in the enclave process. When the node stops (or restarts) the
// enclave, the host closes its pipe: the enclave SIGKILLs its children and exits at once, before
// any 'exit' event runs. The spare child's folder, and the folder of a child that was running a
// job (with whatever requester-derived caches its runtime wrote), stay in the enclave's temp
// folder (/tmp: the enclave gets no TMPDIR) after every stop, for the next job or anyone to find.
// Promise: each child's scratch folder is removed after it, on every path (spare, failure, restart).
const root = mkdtempSync(join(tmpdir(), 'firn-attack-scratch-stop-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
let sup: EnclaveSupervisor | undefined;
const seen: string[] = [];
afterAll(async () => {
  await sup?.stop();
  for (const d of seen) rmSync(d, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

/** The TMPDIR of each live child process of `pid` (its ML children). */
function childScratch(pid: number): string[] {
  const out: string[] = [];
  let kids: string[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return out;
  }
  for (const k of kids) {
    try {
      const env = readFileSync(`/proc/${k}/environ`, 'utf8').split('\0');
      const t = env.find((e) => e.startsWith('TMPDIR='));
      if (t) out.push(t.slice('TMPDIR='.length));
    } catch {}
  }
  return out;
}

describe('attack: the node stops its enclave while an ML child (the spare) is up', () => {
  it.skipIf(!existsSync('/proc/self/task'))(
    "leaves no child's scratch folder behind",
    async () => {
      sup = new EnclaveSupervisor({
        bundlePath: image.entry,
        env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
        logger: createLogger({}, { write: () => undefined }),
        restart: false,
      });
      sup.start();
      await sup.ready();
      await sup.call('init', {});
      const pid = sup.pid!;
      // The enclave starts its spare child ahead of the first job.
      for (let i = 0; i < 300 && childScratch(pid).length === 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      const scratch = childScratch(pid);
      seen.push(...scratch);
      expect(scratch.length).toBeGreaterThan(0);
      for (const d of scratch) expect(existsSync(d)).toBe(true);
      await sup.stop();
      sup = undefined;
      await new Promise((r) => setTimeout(r, 500));
      for (const d of scratch) expect(existsSync(d), `${d} left after the enclave stopped`).toBe(false);
    },
    120_000,
  );
});
