import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const MAX_CURSOR_FILE_BYTES = 4096;

/**
 * Named chain cursors (the next block to scan) in one small JSON file, written atomically (temp
 * file, then rename), so a verifier restarted after a crash or an RPC outage resumes where it
 * stopped instead of rescanning from the deployment block. A missing, oversized or corrupt file
 * reads as no cursor (a rescan: safe, only slower); a write that fails (full disk) is reported
 * once to `onError` and retried at the next save.
 */
export class CursorStore {
  private readonly values = new Map<string, bigint>();
  private failed = false;

  constructor(
    readonly file: string,
    private readonly onError?: (e: Error) => void,
  ) {
    try {
      const text = readFileSync(file, 'utf8');
      if (text.length <= MAX_CURSOR_FILE_BYTES) {
        const o = JSON.parse(text) as Record<string, unknown>;
        for (const [k, v] of Object.entries(o))
          if (typeof v === 'string' && /^\d{1,20}$/.test(v)) this.values.set(k, BigInt(v));
      }
    } catch {
      // No cursor yet (or unreadable): start from the deployment block.
    }
  }

  get(name: string): bigint | undefined {
    return this.values.get(name);
  }

  /** Save `block` for `name` (only forward; an older value is ignored). */
  set(name: string, block: bigint): void {
    const cur = this.values.get(name);
    if (cur !== undefined && block <= cur) return;
    this.values.set(name, block);
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(
        tmp,
        JSON.stringify(Object.fromEntries([...this.values].map(([k, v]) => [k, v.toString()]))),
        { mode: 0o600 },
      );
      renameSync(tmp, this.file);
      this.failed = false;
    } catch (e) {
      if (!this.failed) this.onError?.(e as Error);
      this.failed = true;
    }
  }
}

/** The wait before the next poll after `failures` failures in a row: doubling from `baseMs`, capped at `maxMs`. */
export function backoffMs(baseMs: number, failures: number, maxMs: number): number {
  if (failures <= 0) return baseMs;
  return Math.min(maxMs, baseMs * 2 ** Math.min(failures, 20));
}
