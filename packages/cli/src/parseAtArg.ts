import { InvalidInputError } from '@firn/core';

/**
 * The `--at` of the `firn attest verify` commands: the verification time, unix seconds (a whole
 * number, 0 or more). Throws InvalidInputError (E_INVALID_INPUT) for anything else, and for a value
 * over 1e11, which is a time in milliseconds given by mistake (1e11 s is the year 5138).
 */
export function parseAtArg(at: string | number | undefined): number {
  const now = typeof at === 'number' ? at : Number(at);
  if (!Number.isSafeInteger(now) || now < 0) throw new InvalidInputError('--at must be unix seconds');
  if (now > 1e11) throw new InvalidInputError('--at is unix seconds, not milliseconds');
  return now;
}
