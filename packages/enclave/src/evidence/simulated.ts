import { createPrivateKey, hkdfSync, sign } from 'node:crypto';
import {
  certificateDer,
  encodeSimulatedQuoteBody,
  type SimulatedPlatform,
  simulatedQuoteSigningInput,
} from '@firn/attestation';
import { assertBytes, hexToBytes, TAGS, utf8 } from '@firn/core';
import type { EvidenceProvider } from './types.ts';

/**
 * The simulated TEE's evidence provider: quotes signed by the simulated platform's attestation
 * key, sealing keys derived from the platform secret and the measurement. It gives the same
 * interface as real hardware and no isolation from the host.
 */
export function createSimulatedProvider(
  platform: SimulatedPlatform,
  bundleSha256: Uint8Array,
  opts: { debug?: boolean; svn?: number } = {},
): EvidenceProvider {
  assertBytes(bundleSha256, 'bundle digest', 32);
  const akKey = createPrivateKey({
    key: Buffer.from(hexToBytes(platform.attestationKeyPkcs8)),
    format: 'der',
    type: 'pkcs8',
  });
  const akCert = certificateDer(platform.attestationKeyCertPem);
  const platformId = hexToBytes(platform.platformId);
  const secret = hexToBytes(platform.sealingSecret);
  return {
    teeType: 'simulated',
    async quote(reportData) {
      assertBytes(reportData, 'report data', 64);
      const body = encodeSimulatedQuoteBody({
        debug: opts.debug ?? false,
        measurement: bundleSha256,
        platformId,
        reportData,
        svn: opts.svn ?? 1,
        akCert,
      });
      const sig = sign('sha256', simulatedQuoteSigningInput(body), { key: akKey, dsaEncoding: 'ieee-p1363' });
      const quote = new Uint8Array(body.length + sig.length);
      quote.set(body);
      quote.set(sig, body.length);
      return { quote };
    },
    async sealingKey() {
      // Only this measurement on this platform derives this key (like SGX's MRENCLAVE policy).
      return new Uint8Array(hkdfSync('sha256', secret, bundleSha256, utf8(TAGS.seal), 32));
    },
  };
}
