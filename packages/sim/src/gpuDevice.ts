import { createPrivateKey, randomBytes, sign as cryptoSign } from 'node:crypto';
import { OPAQUE_FIELD } from '@firn/attestation';
import { concatBytes, FirnError, type GpuEvidenceEntry, utf8 } from '@firn/core';

/**
 * The simulated GPU as a device: it answers SPDM GET_MEASUREMENTS for a nonce with evidence in
 * NVIDIA's SDK shape, signed by the key its persisted state holds. This is the only part of
 * `@firn/sim` a simulated enclave (FIRN_TEE=simulated) runs; provisioning a device root and
 * devices (`createSimulatedGpuRoot`, `createSimulatedGpu`) is the devnet's job and never enters
 * an enclave image (decision 1230).
 */

/** Serialisable state of a simulated device root (a devnet persists it as JSON). */
export interface SimulatedGpuRootState {
  rootCertPem: string;
  intermediateCertPem: string;
  /** PKCS#8 PEM of the intermediate's key: issues device identity certificates. */
  intermediateKeyPem: string;
}

/** Serialisable state of one simulated GPU. */
export interface SimulatedGpuState {
  root: SimulatedGpuRootState;
  arch: string;
  driverVersion: string;
  vbiosVersion: string;
  /** 64 measurement values, hex (48 bytes each). */
  measurements: string[];
  /** Leaf-first PEM chain: FMC leaf, device identity, intermediate, root. */
  chainPem: string;
  leafKeyPem: string;
  fwidHex: string;
}

export interface SimulatedGpu {
  readonly state: SimulatedGpuState;
  /** One evidence entry in NVIDIA's SDK shape, for this 32-byte nonce. */
  collect(gpuNonce: Uint8Array): Promise<GpuEvidenceEntry>;
}

function tlv(type: number, value: Uint8Array): Uint8Array {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(type, 0);
  h.writeUInt16LE(value.length, 2);
  return concatBytes(h, value);
}

/** GPUs carry the VBIOS version as u32le of its first four groups, then the fifth group byte. */
function vbiosBytes(v: string): Uint8Array {
  const g = v.split('.').map((x) => Number.parseInt(x, 16));
  const b = Buffer.alloc(8);
  b.writeUInt32LE(((g[0]! << 24) | (g[1]! << 16) | (g[2]! << 8) | g[3]!) >>> 0, 0);
  b[4] = g[4]!;
  return b;
}

/** Rebuild a simulated GPU from its persisted state. */
export function restoreSimulatedGpu(state: SimulatedGpuState): SimulatedGpu {
  const leafKey = createPrivateKey(state.leafKeyPem);
  return {
    state,
    async collect(gpuNonce: Uint8Array): Promise<GpuEvidenceEntry> {
      if (!(gpuNonce instanceof Uint8Array) || gpuNonce.length !== 32)
        throw new FirnError('E_INVALID_INPUT', 'GPU nonce must be 32 bytes');
      // GET_MEASUREMENTS, SPDM 1.1, signature requested (param1 bit 0), all blocks (param2 0xff), slot 0.
      const request = concatBytes(Uint8Array.of(0x11, 0xe0, 0x01, 0xff), gpuNonce, Uint8Array.of(0));
      const blocks = state.measurements.map((hex, i) => {
        const v = Buffer.from(hex, 'hex');
        const m = Buffer.alloc(7);
        m[0] = i + 1;
        m[1] = 1; // DMTF measurement specification
        m.writeUInt16LE(3 + v.length, 2);
        m[4] = 0x01; // DMTF value type: firmware, digest
        m.writeUInt16LE(v.length, 5);
        return concatBytes(m, v);
      });
      const record = concatBytes(...blocks);
      const opaque = concatBytes(
        tlv(OPAQUE_FIELD.vbiosVersion, vbiosBytes(state.vbiosVersion)),
        tlv(OPAQUE_FIELD.chipSku, utf8('sim\0')),
        tlv(OPAQUE_FIELD.project, utf8('sim\0')),
        tlv(OPAQUE_FIELD.projectSku, utf8('0000\0')),
        tlv(OPAQUE_FIELD.driverVersion, utf8(`${state.driverVersion}\0`)),
        tlv(OPAQUE_FIELD.fwid, Buffer.from(state.fwidHex, 'hex')),
      );
      const head = Buffer.alloc(8);
      head.set([0x11, 0x60, 0x00, 0x00, blocks.length], 0);
      head.writeUIntLE(record.length, 5, 3);
      const opaqueLen = Buffer.alloc(2);
      opaqueLen.writeUInt16LE(opaque.length, 0);
      const signed = concatBytes(request, head, record, randomBytes(32), opaqueLen, opaque);
      const signature = cryptoSign('sha384', signed, { key: leafKey, dsaEncoding: 'ieee-p1363' });
      return {
        arch: state.arch,
        nonce: Buffer.from(gpuNonce).toString('hex'),
        evidence: Buffer.from(concatBytes(signed, signature)).toString('base64'),
        certificate: Buffer.from(state.chainPem).toString('base64'),
        driver_version: state.driverVersion,
        vbios_version: state.vbiosVersion,
        version: '1.0',
      };
    },
  };
}
