import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createSimulatedPlatform, createSimulatedRoot } from '@firn/sim';
import { afterAll, describe, expect, it } from 'vitest';
import { scratchOwnerTag } from '../../packages/enclave/src/runtime/mlScratch.ts';
import { buildEnclaveImage } from '../../packages/node/src/enclaveImage.ts';
import { EnclaveSupervisor } from '../../packages/node/src/enclaveSupervisor.ts';
import { createLogger } from '../../packages/node/src/logger.ts';
import { alive } from '../helpers/processTree.ts';

// Attack: an enclave process SIGKILLed (the OOM killer, a host's kill -9) runs neither its
// children's 'exit' handlers nor its own exit hook, so its ML children's private scratch folders
// (HOME/TMPDIR, decision 1550 #3), with whatever requester-derived caches a runtime wrote there,
// stayed in the temp folder for ever. Promise (decision 1601): the folders are named by their
// enclave's pid and pid namespace, and the next enclave started on that temp folder removes those
// whose enclave is gone.
const root = mkdtempSync(join(tmpdir(), 'firn-attack-scratch-kill-'));
const image = await buildEnclaveImage(join(root, 'image'));
const platformPath = join(root, 'platform.json');
writeFileSync(platformPath, JSON.stringify(await createSimulatedPlatform(await createSimulatedRoot())));
const sups: EnclaveSupervisor[] = [];
const seen: string[] = [];
afterAll(async () => {
  for (const s of sups) await s.stop();
  for (const d of seen) rmSync(d, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

/** Each live child of `pid` (its ML children) with its TMPDIR. */
function children(pid: number): { pid: number; scratch: string }[] {
  const out: { pid: number; scratch: string }[] = [];
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
      if (t) out.push({ pid: Number(k), scratch: t.slice('TMPDIR='.length) });
    } catch {}
  }
  return out;
}

async function started(): Promise<EnclaveSupervisor> {
  const sup = new EnclaveSupervisor({
    bundlePath: image.entry,
    env: { FIRN_TEE: 'simulated', FIRN_SIM_PLATFORM: platformPath },
    logger: createLogger({}, { write: () => undefined }),
    restart: false,
  });
  sups.push(sup);
  sup.start();
  await sup.ready();
  await sup.call('init', {});
  return sup;
}

const until = async (ok: () => boolean, ms: number) => {
  for (let t = 0; t < ms && !ok(); t += 50) await new Promise((r) => setTimeout(r, 50));
  return ok();
};

describe('attack: the enclave is SIGKILLed while an ML child (the spare) runs', () => {
  it.skipIf(!existsSync('/proc/self/task'))(
    "the next enclave removes the killed one's child scratch folder, and never a live enclave's",
    async () => {
      const first = await started();
      const pid1 = first.pid!;
      expect(await until(() => children(pid1).length > 0, 15_000), 'the spare child started').toBe(true);
      const kids = children(pid1);
      seen.push(...kids.map((k) => k.scratch));
      for (const k of kids) {
        // Named by its enclave's pid and this host/pid namespace.
        expect(basename(k.scratch)).toMatch(new RegExp(`^firn-ml-${scratchOwnerTag()}-${pid1}-`));
        writeFileSync(join(k.scratch, 'runtime-cache.bin'), 'requester-derived');
      }
      process.kill(pid1, 'SIGKILL');
      expect(await until(() => !alive(pid1), 10_000)).toBe(true);
      // The kill ran no cleanup: the folders are still there.
      for (const k of kids) expect(existsSync(k.scratch), `${k.scratch} right after the kill`).toBe(true);

      // A live enclave's folder is never taken: a second one up while the third starts keeps its own.
      const second = await started();
      const pid2 = second.pid!;
      expect(await until(() => children(pid2).length > 0, 15_000)).toBe(true);
      const live = children(pid2).map((k) => k.scratch);
      seen.push(...live);
      // The orphaned child of the killed enclave ends once its pipe is gone, or is left: either way,
      // its folder went when the second enclave started.
      for (const k of kids)
        expect(await until(() => !existsSync(k.scratch), 5_000), `${k.scratch} after a restart`).toBe(true);
      const third = await started();
      expect(third.pid).toBeGreaterThan(0);
      for (const d of live) expect(existsSync(d), `${d} of a live enclave`).toBe(true);
    },
    120_000,
  );
});
