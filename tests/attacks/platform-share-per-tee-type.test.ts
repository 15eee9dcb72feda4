import { bytesToHex, computePlatformIdHash, platformFamily } from '@firn/core';
import { describe, expect, it } from 'vitest';

// A greedy operator with one Intel Xeon that supports both SGX and TDX runs one SGX enclave and
// one TDX guest on it. Both DCAP quotes carry the same platform's PCK certificate, hence the same
// PPID (packages/attestation/src/dcap/quoteIdentity.ts: platformId = PPID). The platform id hash
// mixes in the TEE type, so the one physical platform gets two reward identities and FirnRewards
// counts it twice per epoch. Promise (issue 9, docs/decisions/0800): one capacity share per
// physical platform, whatever number of apps it hosts.
describe('attack: one physical platform earns two capacity shares through SGX and TDX', () => {
  it('the SGX and the TDX attestation of one PCK platform (same PPID) give one platform id hash', () => {
    const ppid = new Uint8Array(16).fill(0x5a);
    expect(bytesToHex(computePlatformIdHash('tdx', ppid))).toBe(
      bytesToHex(computePlatformIdHash('sgx', ppid)),
    );
  });

  it('families stay apart: a simulated platform never shares a hash with an Intel one, nor two PPIDs', () => {
    const ppid = new Uint8Array(16).fill(0x5a);
    const other = new Uint8Array(16).fill(0x5b);
    expect(platformFamily('sgx')).toBe('intel-dcap');
    expect(platformFamily('tdx')).toBe('intel-dcap');
    expect(platformFamily('simulated')).toBe('simulated');
    expect(bytesToHex(computePlatformIdHash('simulated', ppid))).not.toBe(
      bytesToHex(computePlatformIdHash('sgx', ppid)),
    );
    expect(bytesToHex(computePlatformIdHash('tdx', other))).not.toBe(
      bytesToHex(computePlatformIdHash('tdx', ppid)),
    );
  });
});
