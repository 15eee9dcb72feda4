import { FirnError } from '@firn/core';

/**
 * The TD's ATTRIBUTES field (8 bytes, little-endian u64 in the TD report), decoded by the bit
 * layout of Intel's TDX Module ABI (TDX 1.5, "TD Attributes"), as dcap-qvl reads it:
 * - TUD (bits 7:0): bit 0 DEBUG; bits 7:1 reserved;
 * - SEC (bits 31:8): bits 27:8 reserved, 28 SEPT_VE_DISABLE, 29 reserved (MIGRATABLE), 30 PKS, 31 KL;
 * - OTHER (bits 63:32): bits 62:32 reserved, 63 PERFMON.
 * "Reserved" means not allowed for an appraised TD: a bit firn does not know is refused, never
 * ignored (fail closed), as dcap-qvl's validate_attrs does.
 */
export interface TdAttributes {
  debug: boolean;
  /** Set: an access to a PENDING private page terminates the TD instead of raising #VE in it. */
  septVeDisable: boolean;
  /** Supervisor protection keys; allowed. */
  pks: boolean;
  /** Key Locker; allowed. */
  kl: boolean;
  /** Performance monitoring; allowed (it does not weaken the TD's isolation). */
  perfmon: boolean;
  /** The reserved bits that are set, as bit numbers 0..63 (empty for a conforming TD). */
  reservedBits: number[];
}

/** Bits a TD may set: DEBUG (policy decides), SEPT_VE_DISABLE, PKS, KL, PERFMON. */
const KNOWN_BITS = new Set([0, 28, 30, 31, 63]);

/**
 * Decode the 8 TD ATTRIBUTES bytes (as they sit in the report, little-endian) or their 16-hex
 * text. Throws E_EVIDENCE_MALFORMED for anything but 8 bytes. Decoding only; the policy decides.
 */
export function parseTdAttributes(value: Uint8Array | string): TdAttributes {
  const b =
    typeof value === 'string'
      ? /^[0-9a-fA-F]{16}$/.test(value)
        ? Buffer.from(value, 'hex')
        : undefined
      : value;
  if (b === undefined || b.length !== 8)
    throw new FirnError('E_EVIDENCE_MALFORMED', 'TD attributes must be 8 bytes');
  const bit = (n: number) => ((b[n >> 3]! >> (n & 7)) & 1) === 1;
  const reservedBits: number[] = [];
  for (let n = 0; n < 64; n++) if (bit(n) && !KNOWN_BITS.has(n)) reservedBits.push(n);
  return {
    debug: bit(0),
    septVeDisable: bit(28),
    pks: bit(30),
    kl: bit(31),
    perfmon: bit(63),
    reservedBits,
  };
}
