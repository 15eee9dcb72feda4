import type { ErrorCode } from '@firn/core';

/**
 * The error codes a workload may end with; the host sees only the code (0853). Any other code,
 * and any untyped throw, becomes E_JOB_FAILED; the message always travels sealed to the requester.
 */
export const APP_ERROR_CODES: readonly ErrorCode[] = [
  'E_INPUT_INVALID',
  'E_INVALID_INPUT',
  'E_DATA_INVALID',
  'E_MODEL_INVALID',
  'E_JOB_INVALID',
  'E_JOB_FAILED',
  'E_PARSE',
  'E_TOO_LARGE',
  'E_UNSUPPORTED',
  'E_NOT_FOUND',
  'E_TIMEOUT',
];
/** Longest error message a workload's failure carries to the requester. */
export const MAX_APP_ERROR_MESSAGE = 1024;

/**
 * Normalize anything a workload threw into {code, message}: a FirnError with an app code keeps
 * both; an Error keeps its message under E_JOB_FAILED; anything else is E_JOB_FAILED. The message
 * is capped at MAX_APP_ERROR_MESSAGE characters and goes only to the requester, sealed.
 */
export function appErrorBody(e: unknown): { code: ErrorCode; message: string } {
  const cap = (m: unknown) =>
    typeof m === 'string' && m.length > 0 ? m.slice(0, MAX_APP_ERROR_MESSAGE) : 'the workload failed';
  if (typeof e === 'object' && e !== null) {
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (typeof code === 'string' && (APP_ERROR_CODES as readonly string[]).includes(code))
      return { code: code as ErrorCode, message: cap(message) };
    if (e instanceof Error || typeof message === 'string')
      return { code: 'E_JOB_FAILED', message: cap(message) };
  }
  return { code: 'E_JOB_FAILED', message: 'the workload failed' };
}
