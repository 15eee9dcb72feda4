import { isFirnError } from '@firn/core';
import { expect } from 'vitest';
import {
  clearDcapCaches,
  type VerifyDcapOptions,
  verifyDcapQuote,
  verifyDcapQuoteSync,
} from '../../src/dcap/verifyDcapQuote.ts';

/** A verification's outcome as the mode tests compare it: the verdict, or the error's code and message. */
export type Outcome =
  | { status: string; advisoryIds: string[]; extra: unknown; measurement: string }
  | { code: string; message: string };

/** The outcome of verifyDcapQuote with every cache cleared first. */
export async function outcome(quote: Uint8Array, opts: VerifyDcapOptions): Promise<Outcome> {
  clearDcapCaches();
  try {
    const f = await verifyDcapQuote(quote, opts);
    const measurement = Buffer.from(f.measurement).toString('hex');
    return { status: f.tcbStatus, advisoryIds: f.advisoryIds, extra: f.extra, measurement };
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return { code: e.code, message: e.message };
  }
}

/** The outcome on the pool, on the calling thread, in 'auto', on the signature thread and synchronously: all must agree. */
export async function agreed(quote: Uint8Array, opts: VerifyDcapOptions): Promise<Outcome> {
  const pool = await outcome(quote, { ...opts, signatureThreads: 'pool' });
  expect(await outcome(quote, { ...opts, signatureThreads: 'caller' })).toEqual(pool);
  expect(await outcome(quote, { ...opts, signatureThreads: 'auto' })).toEqual(pool);
  expect(await outcome(quote, { ...opts, signatureThreads: 'thread' })).toEqual(pool);
  let sync: Outcome;
  clearDcapCaches();
  try {
    const f = verifyDcapQuoteSync(quote, opts);
    const measurement = Buffer.from(f.measurement).toString('hex');
    sync = { status: f.tcbStatus, advisoryIds: f.advisoryIds, extra: f.extra, measurement };
  } catch (e) {
    if (!isFirnError(e)) throw e;
    sync = { code: e.code, message: e.message };
  }
  expect(sync).toEqual(pool);
  return pool;
}

/** Where a verification runs: verifyDcapQuote's `signatureThreads`, or `sync` (verifyDcapQuoteSync). */
export type VerifyMode = 'pool' | 'caller' | 'auto' | 'thread' | 'sync';
/** Every VerifyMode. */
export const VERIFY_MODES: readonly VerifyMode[] = ['pool', 'caller', 'auto', 'thread', 'sync'];

/**
 * One verification in `mode` with the caches as they are, as text: `ok STATUS MEASUREMENT_HEX`,
 * or `CODE: message` for a FirnError (anything else is rethrown).
 */
export async function verdictIn(
  mode: VerifyMode,
  quote: Uint8Array,
  opts: VerifyDcapOptions,
): Promise<string> {
  try {
    const v =
      mode === 'sync'
        ? verifyDcapQuoteSync(quote, opts)
        : await verifyDcapQuote(quote, { ...opts, signatureThreads: mode });
    return `ok ${v.tcbStatus} ${Buffer.from(v.measurement).toString('hex')}`;
  } catch (e) {
    if (!isFirnError(e)) throw e;
    return `${e.code}: ${e.message}`;
  }
}
