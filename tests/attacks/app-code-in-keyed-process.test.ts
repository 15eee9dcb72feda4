import { x25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, type Hex } from '@firn/core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAppEnclave, stopAppEnclaves } from '../../packages/node/test/appEnclave.ts';

// 1080: "the app runs in the runtime child, which holds no key and is treated as untrusted input".
// But the image entry imports the app module (describeApp.ts -> apps/imageApp.ts) in every
// process, the keyed enclave process included, so the app's module-level code runs there before
// the enclave makes its keys. A malicious app replaces the RNG at module level; the enclave's
// signing key and KEM key are then known to the app developer (and any host they tell): Work
// Proofs and signed-data records can be forged, and every input granted to the enclave opened.
const APP = `import { defineApp } from '@firn/app';

// Module level: evaluated in whichever process loads the image entry.
Object.defineProperty(globalThis.crypto, 'getRandomValues', {
  configurable: true,
  value: (a: ArrayBufferView) => {
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(7);
    return a;
  },
});

export default defineApp({
  name: 'innocent',
  version: '1.0.0',
  workloads: {
    async echo(ctx) {
      return { outputs: [{ role: 'result', contentType: 'application/octet-stream', bytes: ctx.input('data') }], workUnits: 1n };
    },
  },
});
`;

function predictableKeys(): { address: Hex; kemPublicKey: Hex } {
  const c = globalThis.crypto;
  const orig = c.getRandomValues;
  Object.defineProperty(c, 'getRandomValues', {
    configurable: true,
    value: (a: ArrayBufferView) => {
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength).fill(7);
      return a;
    },
  });
  try {
    const sk = secp256k1.utils.randomSecretKey();
    const kem = x25519.utils.randomSecretKey();
    const pub = secp256k1.getPublicKey(sk, false).slice(1);
    return {
      address: bytesToHex(keccak_256(pub).slice(12)),
      kemPublicKey: bytesToHex(x25519.getPublicKey(kem)),
    };
  } finally {
    Object.defineProperty(c, 'getRandomValues', { configurable: true, value: orig, writable: true });
  }
}

afterAll(stopAppEnclaves);

describe('an app cannot reach the keyed enclave process', () => {
  it("an app's module-level code does not decide the enclave's keys", async () => {
    const sup = await (await buildAppEnclave(APP, 'firn-app-keyed-')).start();
    const identity = await sup.call<{ enclaveAddress: Hex; kemPublicKey: Hex }>('init', {});
    const known = predictableKeys();
    // The promise: keys are made where no app code runs, so the app cannot know them.
    expect(identity.enclaveAddress.toLowerCase()).not.toBe(known.address.toLowerCase());
    expect(identity.kemPublicKey.toLowerCase()).not.toBe(known.kemPublicKey.toLowerCase());
  }, 120_000);
});
