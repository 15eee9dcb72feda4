import { InvalidInputError, MAX_OUTPUT_BOUND_BYTES, parseOutputBound } from '@firn/core';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * A byte size from a flag: whole bytes, or a whole number with KiB, MiB, GiB or TiB (case-blind);
 * at least 4096 (one block: every stored file is charged at least that) and at most 2^53 - 1.
 * E_INVALID_INPUT naming the flag otherwise.
 */
export function byteSizeArg(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,16})\s*([kmgt]ib|b)?$/i.exec(v.trim());
  const n = m === null ? Number.NaN : Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!;
  if (!Number.isSafeInteger(n) || n < 4096)
    throw new InvalidInputError(
      `${flag} must be a size of at least 4096 bytes: bytes, or a whole number with KiB, MiB, GiB or TiB, e.g. 4GiB (got ${JSON.stringify(v.slice(0, 32))})`,
    );
  return n;
}

/**
 * `--max-output SIZE`: the job's declared output bound (JobRequest.maxOutputBytes, decision 1690),
 * a size as byteSizeArg takes it from 4096 bytes to 2 GiB (MAX_OUTPUT_BOUND_BYTES). The bound
 * counts the sealed outputs, each rounded up to whole 4096-byte blocks, so declare a little more
 * than the plaintext. Undefined when the flag is absent. E_INVALID_INPUT naming the flag otherwise,
 * before anything is posted.
 */
export function maxOutputArg(v: string | undefined, flag = '--max-output'): number | undefined {
  const n = byteSizeArg(v, flag);
  if (n === undefined) return undefined;
  if (n > MAX_OUTPUT_BOUND_BYTES)
    throw new InvalidInputError(
      `${flag} must be at most 2GiB (${MAX_OUTPUT_BOUND_BYTES} bytes), more than the enclave can produce (got ${JSON.stringify(v!.slice(0, 32))})`,
    );
  return parseOutputBound(n, flag);
}

/** The help text of `--max-output`. */
export const MAX_OUTPUT_HELP =
  "most storage the job's sealed outputs may take (e.g. 64MiB; 4KiB..2GiB, each output in whole 4 KiB blocks): the node reserves it before its claim and refuses the job at once if it cannot; an output past it fails the job (default: none declared, one block reserved)";
