import type { KeyObject } from 'node:crypto';
import type { FirnError } from '@firn/core';
import { ecdsaVerifyOnThread, takeOver } from './signatureThread.ts';
import { ecdsaVerifyDer, ecdsaVerifyRaw } from './x509.ts';

/** A signature check's result: known now (synchronous mode) or coming from another thread. */
export type SignatureResult = boolean | Promise<boolean>;

/**
 * Where deferred checks run: ecdsaVerifyOnPool (libuv's pool) or ecdsaVerifyOnThread (the one
 * signature thread). Same contract: false at once for a malformed raw signature, else a promise of
 * the result (rejected only when no verdict could be reached).
 */
export type DeferredVerify = (
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
  dsaEncoding: 'der' | 'ieee-p1363',
) => SignatureResult;

/**
 * The signature checks of one DCAP verification, in the order the verifier makes them.
 *
 * - Synchronous mode verifies each signature on the calling thread and throws its error at once.
 * - Deferred mode queues each on libuv's thread pool and lets the caller go on parsing; `settle`
 *   waits for all of them and throws the error of the EARLIEST failing check in registration
 *   order. A caller that meets a synchronous error must call `settle` first and only then rethrow
 *   it, so a signature that failed before that point still wins: the verdict and error are the
 *   ones the synchronous order gives (decision 1270).
 *
 * Cache insertions go through `whenPassed`, so nothing enters a cache before every signature
 * checked up to that point has passed.
 */
export class SignatureChecks {
  private readonly pending: { result: Promise<boolean>; error: () => FirnError }[] = [];
  private readonly commits: { upTo: number; run: () => void }[] = [];

  /**
   * `later`: where to queue the verifications instead of running them now (undefined: now, on
   * this thread). It may be cleared before the first check is made (a warm call has too few
   * checks to gain from another thread).
   */
  constructor(public later: DeferredVerify | undefined) {}

  /** Whether checks are queued (a `later` is set) rather than made now. */
  get deferred(): boolean {
    return this.later !== undefined;
  }

  /** Check a DER ECDSA-SHA256 signature (certificates, CRLs); `error` names the failure. */
  der(key: KeyObject, data: Uint8Array, signature: Uint8Array, error: () => FirnError): SignatureResult {
    const r =
      this.later !== undefined
        ? this.later(key, data, signature, 'der')
        : ecdsaVerifyDer(key, data, signature);
    this.add(r, error);
    return r;
  }

  /** Check a raw r||s ECDSA-SHA256 signature (quotes, QE reports, collateral JSON). */
  raw(key: KeyObject, data: Uint8Array, signature: Uint8Array, error: () => FirnError): SignatureResult {
    const r =
      this.later !== undefined
        ? this.later(key, data, signature, 'ieee-p1363')
        : ecdsaVerifyRaw(key, data, signature);
    this.add(r, error);
    return r;
  }

  /** Record a result (a shared in-flight check, say): false throws now, a promise is queued. */
  add(result: SignatureResult, error: () => FirnError): void {
    if (result === true) return;
    if (result === false) throw error();
    this.pending.push({ result, error });
  }

  /** Run `run` once every check recorded so far has passed: now if none is pending. */
  whenPassed(run: () => void): void {
    if (this.pending.length === 0) run();
    else this.commits.push({ upTo: this.pending.length, run });
  }

  /**
   * Wait for every queued check; run the commits whose checks all passed; throw the error of the
   * first failing check in registration order, if any.
   */
  async settle(): Promise<void> {
    if (this.pending.length === 0) return;
    // Nothing left to do here but wait: make the checks the signature thread has not started.
    if (this.later === ecdsaVerifyOnThread) takeOver(this.pending.map((p) => p.result));
    const results = await Promise.all(this.pending.map((p) => p.result));
    let firstFailed = results.indexOf(false);
    if (firstFailed < 0) firstFailed = results.length;
    for (const c of this.commits) if (c.upTo <= firstFailed) c.run();
    if (firstFailed < results.length) throw this.pending[firstFailed]!.error();
  }
}
