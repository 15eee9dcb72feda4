import { existsSync, linkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { FirnError, InvalidInputError } from '@firn/core';
import { partialPathFor, removeAbandonedPartialsBeside } from './partialFiles.ts';

/** Whether `p` is a directory (false when it does not exist or cannot be stat'ed). */
function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The check every `--out` makes before any work (decision 1747): a folder is refused first, even with --force (E_INVALID_INPUT "is a
 * directory: name a file"), then an existing file without `force` (E_CONFLICT; `whyKeep` says what
 * replacing it would cost, e.g. for a key). `flag` names the option the user typed (default --out).
 */
export function checkOut(
  out: string,
  force: boolean | undefined,
  o: { flag?: string; whyKeep?: string } = {},
): void {
  const flag = o.flag ?? '--out';
  if (isDirectory(out))
    throw new InvalidInputError(`${flag} ${out} is a directory: name a file (e.g. in it)`);
  if (!force && existsSync(out))
    throw new FirnError(
      'E_CONFLICT',
      `${flag} ${out} already exists${o.whyKeep ? `: ${o.whyKeep}` : ''}; pass --force to replace it`,
    );
}

/**
 * Write `data` to `out` whole or not at all: checkOut first, then a partial file beside it
 * (partialPathFor, mode `o.mode`, default 0600) linked into place (a file that appeared meanwhile
 * is E_CONFLICT without `force`) or, with `force`, renamed over it. The partial is removed on every
 * failure, so no half-written or secret content (a private key) is left beside `out`; an error
 * naming the partial path is reported under `out` by cliErrorBody.
 */
export function writeOutFileSync(
  out: string,
  data: string | Uint8Array,
  o: { force?: boolean; mode?: number; flag?: string; whyKeep?: string } = {},
): void {
  checkOut(out, o.force, o);
  removeAbandonedPartialsBeside(out);
  const tmp = partialPathFor(out);
  try {
    writeFileSync(tmp, data, { mode: o.mode ?? 0o600, flag: 'wx' });
    if (o.force) {
      // Re-checked: a folder made meanwhile is not a file to replace.
      checkOut(out, true, o);
      renameSync(tmp, out);
      return;
    }
    try {
      linkSync(tmp, out);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'EEXIST') checkOut(out, false, o);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
      // No hard links on this filesystem: re-checked right before the rename.
      checkOut(out, false, o);
      renameSync(tmp, out);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
}
