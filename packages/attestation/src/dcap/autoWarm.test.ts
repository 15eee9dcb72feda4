import { describe, expect, it, vi } from 'vitest';
import { VECTORS, vector, vectorJson } from '../../test/dcap/testVectors.ts';

// 'auto' with a free core: the pool is used, so which checks go there is observable.
vi.mock('./freeCore.ts', () => ({ poolHasACore: () => true }));
vi.mock('./x509.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./x509.ts')>();
  return { ...orig, ecdsaVerifyOnPool: vi.fn(orig.ecdsaVerifyOnPool) };
});

const { ecdsaVerifyOnPool } = await import('./x509.ts');
const { clearDcapCaches, verifyDcapQuote } = await import('./verifyDcapQuote.ts');
const onPool = vi.mocked(ecdsaVerifyOnPool);

/**
 * Decision 1340 (later): with a free core, 'auto' queues a cold call's signatures on the thread
 * pool, but checks a warm call's two or three on the calling thread, where they cost less.
 */
describe("verifyDcapQuote 'auto' (decision 1340)", () => {
  it('queues a cold call on the pool and keeps a warm call (same collateral object) on the caller, same verdict', async () => {
    clearDcapCaches();
    const quote = vector(VECTORS.sgx.quote);
    const collateral = vectorJson(VECTORS.sgx.collateral);
    const opts = { collateral, now: VECTORS.sgx.now };
    onPool.mockClear();
    const cold = await verifyDcapQuote(quote, opts);
    expect(onPool.mock.calls.length).toBeGreaterThanOrEqual(5);
    onPool.mockClear();
    const warm = await verifyDcapQuote(quote, opts);
    expect(onPool).not.toHaveBeenCalled();
    expect(warm.tcbStatus).toBe(cold.tcbStatus);
    // A collateral object it has not seen is cold again for 'auto' (its bytes are checked or matched).
    onPool.mockClear();
    await verifyDcapQuote(quote, { collateral: { ...collateral }, now: VECTORS.sgx.now });
    expect(onPool.mock.calls.length).toBeGreaterThan(0);
  });
});
