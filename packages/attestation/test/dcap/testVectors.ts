import { readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';

/** Test-only access to the shared DCAP vectors (see each folder's SOURCE.md for provenance). */
export function vector(path: string): Uint8Array {
  return new Uint8Array(readFileSync(sharedPath('vectors', 'attestation', path)));
}
export function vectorJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(sharedPath('vectors', 'attestation', path), 'utf8')) as Record<
    string,
    unknown
  >;
}
export const iso = (s: string): number => Date.parse(s) / 1000;

/** The vectors with the time each SOURCE.md says to verify at. */
export const VECTORS = {
  sgx: {
    quote: 'phala-dcap-qvl/sgx_quote',
    collateral: 'phala-dcap-qvl/sgx_quote_collateral.json',
    now: 1752919277,
  },
  tdx: {
    quote: 'phala-dcap-qvl/tdx_quote',
    collateral: 'phala-dcap-qvl/tdx_quote_collateral.json',
    now: 1752919234,
  },
  tdxOutdated: {
    quote: 'phala-dcap-qvl/tdx_quote_outdated',
    collateral: 'phala-dcap-qvl/tdx_quote_outdated_collateral.json',
    now: iso('2026-03-20T10:00:00Z'),
  },
  tdxWrongTee: {
    quote: 'phala-dcap-qvl/history/tdx_quote.2024-09-02',
    collateral: 'phala-dcap-qvl/history/tdx_quote_collateral.2024-11-23.json',
    now: iso('2024-11-24T00:00:00Z'),
  },
  intelSgx: {
    quote: 'intel-qvl-sampledata/sgx/quote.dat',
    collateral: 'intel-qvl-sampledata/sgx/collateral.dcap-qvl.json',
    root: 'intel-qvl-sampledata/sgx/trustedRootCaCert.pem',
    now: iso('2025-01-01T00:00:00Z'),
  },
  intelTdx: {
    quote: 'intel-qvl-sampledata/tdx/quote.dat',
    collateral: 'intel-qvl-sampledata/tdx/collateral.dcap-qvl.json',
    root: 'intel-qvl-sampledata/tdx/trustedRootCaCert.pem',
    now: iso('2025-01-01T00:00:00Z'),
  },
} as const;
