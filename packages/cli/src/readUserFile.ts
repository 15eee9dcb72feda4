import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { FirnError, InvalidInputError, TooLargeError } from '@firn/core';

/*
 * One reader for every file a user names on the command line (evidence, quotes, collateral,
 * reports, VCEKs, chains, CRLs, policies, roots). A size check with stat() followed by readFile()
 * is not enough: a FIFO blocks forever and /dev/zero reports size 0 and then yields gigabytes. Here
 * the path is opened without blocking (O_NONBLOCK: opening a FIFO with no writer returns at once),
 * the opened descriptor (not the path, so a swap between check and read is moot) must be a regular
 * file, and at most cap + 1 bytes are read whatever its size claims.
 */

/** Default cap for a user-named file: 1 MiB. */
export const DEFAULT_USER_FILE_CAP = 1 << 20;

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * `what` is either a noun ("quote") or the flag that named the file ("--key-file", or
 * "--input data=" for a ROLE=FILE value); a flag is quoted as the user typed it, `--key-file PATH`,
 * so the message names both (decision 1667).
 */
const isFlag = (what: string) => what.startsWith('-');
const named = (path: string, what: string) =>
  isFlag(what) ? `${what}${what.endsWith('=') ? '' : ' '}${path}` : `${what} file ${path}`;

function openError(e: unknown, path: string, what: string): FirnError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT')
    return new FirnError(
      'E_NOT_FOUND',
      isFlag(what) ? `${named(path, what)}: no such file` : `${what} file not found: ${path}`,
      { details: { path } },
    );
  if (code === 'EISDIR') return notRegular(path, what, 'a directory');
  if (code === 'ENOTDIR')
    return new FirnError('E_NOT_FOUND', `${named(path, what)}: not found (a parent of it is not a folder)`, {
      details: { path },
    });
  if (code === 'EACCES' || code === 'EPERM')
    return new FirnError('E_INVALID_INPUT', `${named(path, what)} cannot be read: permission denied`);
  return new FirnError('E_INVALID_INPUT', `${named(path, what)} cannot be opened (${code ?? 'error'})`);
}

function notRegular(path: string, what: string, kind: string): InvalidInputError {
  return new InvalidInputError(
    isFlag(what)
      ? `${named(path, what)}: is ${kind}, not a file: name a file${kind === 'a directory' ? ' in it' : ''}`
      : `${what} file ${path} is ${kind}, not a regular file: save the ${what} to a file and name that`,
  );
}

function kindOf(st: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a pipe (FIFO)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Read a user-named file of at most `cap` bytes (default 1 MiB). `what` names the file in errors:
 * a noun ("quote", "VCEK"...) or the flag that named it ("--key-file", "--model"). Errors: E_NOT_FOUND (no such file, naming the path), E_INVALID_INPUT (a
 * directory, FIFO, device or socket, or unreadable; naming the path), E_TOO_LARGE (over `cap`
 * bytes, details { size, limit }; the size reported is a lower bound when the file is longer).
 */
export async function readUserFile(path: string, what: string, cap = DEFAULT_USER_FILE_CAP): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(e, path, what);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notRegular(path, what, kindOf(st));
    // Refused on its stated size before any buffer is allocated (a sparse 3 GiB file, say).
    if (st.size > cap) throw new TooLargeError(named(path, what), st.size, cap);
    const buf = Buffer.alloc(Math.min(cap + 1, Math.max(st.size + 1, 1)));
    let got = 0;
    let out = buf;
    for (;;) {
      if (got === out.length) {
        if (out.length > cap) break;
        const bigger = Buffer.alloc(Math.min(cap + 1, out.length * 2));
        out.copy(bigger, 0, 0, got);
        out = bigger;
      }
      const { bytesRead } = await fh.read(out, got, out.length - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got > cap) throw new TooLargeError(named(path, what), Math.max(got, st.size), cap);
    return out.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** readUserFile, synchronously (for option parsers). Same errors. */
export function readUserFileSync(path: string, what: string, cap = DEFAULT_USER_FILE_CAP): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw openError(e, path, what);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, what, kindOf(st));
    // Refused on its stated size before any buffer is allocated (a sparse 3 GiB file, say).
    if (st.size > cap) throw new TooLargeError(named(path, what), st.size, cap);
    let out = Buffer.alloc(Math.min(cap + 1, Math.max(st.size + 1, 1)));
    let got = 0;
    for (;;) {
      if (got === out.length) {
        if (out.length > cap) break;
        const bigger = Buffer.alloc(Math.min(cap + 1, out.length * 2));
        out.copy(bigger, 0, 0, got);
        out = bigger;
      }
      const n = readSync(fd, out, got, out.length - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got > cap) throw new TooLargeError(named(path, what), Math.max(got, st.size), cap);
    return out.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
