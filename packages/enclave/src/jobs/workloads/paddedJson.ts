import { padmeLength } from '@firn/core';

/** Smallest JSON output of a first-party workload, bytes (docs/decisions/1851). */
export const MIN_JSON_OUTPUT_BYTES = 4096;

/**
 * JSON text followed by spaces (JSON allows trailing whitespace; parsers read it unchanged) up to
 * the Padmé length of max(its length, MIN_JSON_OUTPUT_BYTES): the sealed size the host stores
 * and records tells nothing of the text below 4 KiB, and only its bucket above
 * (docs/decisions/1851-first-party-outputs-sized-by-shape.md).
 */
export function paddedJson(text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const out = new Uint8Array(padmeLength(Math.max(body.length, MIN_JSON_OUTPUT_BYTES))).fill(0x20);
  out.set(body, 0);
  return out;
}
