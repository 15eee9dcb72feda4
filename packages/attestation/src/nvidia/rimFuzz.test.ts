import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isFirnError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { certificateMutations } from '../../test/evidenceVerifierBehaviour.ts';
import { verifyRim } from './verifyRim.ts';

// A RIM's signer chain is untrusted input too: the structured certificate mutations of the GPU
// behaviour suite, applied to each certificate a real NVIDIA RIM carries, must give a typed error
// or an invalid verdict, never an OpenSSL error and never a valid RIM.
const RIM = readFileSync(
  fileURLToPath(
    new URL(
      '../../vectors/nvidia-attestation-sdk/rims/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml',
      import.meta.url,
    ),
  ),
  'utf8',
);
const NOW = 1780272000; // 2026-06-01, inside the signer chain's validity (see the folder's SOURCE.md)
const CERT_RE = /<ds:X509Certificate>([A-Za-z0-9+/=\s]+)<\/ds:X509Certificate>/g;

function outcome(xml: string): string {
  try {
    const f = verifyRim(xml, { now: NOW });
    return f.signatureValid && f.chainValid ? 'VALID' : 'INVALID';
  } catch (e) {
    if (!isFirnError(e)) throw new Error(`untyped error: ${(e as Error)?.message}`);
    return e.code;
  }
}

describe('verifyRim under certificate fuzzing', () => {
  it('the genuine RIM is valid at the stated time', () => {
    expect(outcome(RIM)).toBe('VALID');
  });
  it('every structured mutation of every signer certificate is refused, typed', () => {
    const certs = [...RIM.matchAll(CERT_RE)];
    expect(certs.length).toBeGreaterThan(1);
    let tried = 0;
    for (const m of certs) {
      const der = new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
      for (const [what, bad] of certificateMutations(der)) {
        const xml = RIM.replace(m[1]!, Buffer.from(bad).toString('base64'));
        expect(outcome(xml), what).not.toBe('VALID');
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(certs.length * 4);
  });
});
