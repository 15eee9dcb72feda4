import { describe, expect, it, vi } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';

// 'auto' with a free core: the signature thread is used, so which checks go there is observable.
vi.mock('./freeCore.ts', () => ({ coreIsFree: () => true }));
vi.mock('./signatureThread.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./signatureThread.ts')>();
  return { ...orig, ecdsaVerifyOnThread: vi.fn(orig.ecdsaVerifyOnThread) };
});
vi.mock('./x509.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./x509.ts')>();
  return { ...orig, ecdsaVerifyOnPool: vi.fn(orig.ecdsaVerifyOnPool) };
});

const { ecdsaVerifyOnThread } = await import('./signatureThread.ts');
const { ecdsaVerifyOnPool } = await import('./x509.ts');
const { clearDcapCaches, verifyDcapQuote, verifyDcapQuoteSync } = await import('./verifyDcapQuote.ts');
const onThread = vi.mocked(ecdsaVerifyOnThread);
const onPool = vi.mocked(ecdsaVerifyOnPool);

/**
 * Decisions 1340 and 1490: with a free core, 'auto' queues a cold call's signatures on the
 * signature thread (the pool no more), but checks a warm call's two or three on the calling
 * thread, where they cost less.
 */
describe("verifyDcapQuote 'auto' (decisions 1340, 1490)", () => {
  it('queues a cold call on the signature thread and keeps a warm call (same collateral object) on the caller, same verdict', async () => {
    clearDcapCaches();
    const quote = vector(VECTORS.sgx.quote);
    const collateral = vectorJson(VECTORS.sgx.collateral);
    const opts = { collateral, now: VECTORS.sgx.now };
    onThread.mockClear();
    onPool.mockClear();
    const cold = await verifyDcapQuote(quote, opts);
    expect(onThread.mock.calls.length).toBeGreaterThanOrEqual(5);
    expect(onPool).not.toHaveBeenCalled();
    onThread.mockClear();
    const warm = await verifyDcapQuote(quote, opts);
    expect(onThread).not.toHaveBeenCalled();
    expect(warm.tcbStatus).toBe(cold.tcbStatus);
    clearDcapCaches();
    expect(verifyDcapQuoteSync(quote, opts).tcbStatus).toBe(cold.tcbStatus);
    // A collateral object it has not seen is cold again for 'auto' (its bytes are checked or matched).
    onThread.mockClear();
    await verifyDcapQuote(quote, { collateral: { ...collateral }, now: VECTORS.sgx.now });
    expect(onThread.mock.calls.length).toBeGreaterThan(0);
  });
});
