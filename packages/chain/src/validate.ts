import { InvalidInputError } from '@firn/core';
import { type Address, type Hex, isAddress } from 'viem';

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

/** Check a 0x-prefixed 32-byte hex value before it reaches an RPC. */
export function assertBytes32(value: unknown, what: string): Hex {
  if (typeof value !== 'string' || !BYTES32.test(value))
    throw new InvalidInputError(`${what} must be 32 bytes of 0x hex`);
  return value as Hex;
}

export function assertAddress(value: unknown, what: string): Address {
  if (typeof value !== 'string' || !isAddress(value, { strict: false }))
    throw new InvalidInputError(`${what} must be an address`);
  return value as Address;
}

/** Check an unsigned integer that fits in `bits` bits. */
export function assertUint(value: bigint | number, bits: number, what: string): bigint {
  const v = typeof value === 'number' ? (Number.isInteger(value) ? BigInt(value) : -1n) : value;
  if (v < 0n || v >= 1n << BigInt(bits)) throw new InvalidInputError(`${what} must be a uint${bits}`);
  return v;
}
