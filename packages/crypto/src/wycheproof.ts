import { readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';

/** The common shape of a Wycheproof vector file (testvectors_v1); test support only. */
export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: (G & { tests: WycheproofTest[] })[];
}

export interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
  [field: string]: unknown;
}

export function loadWycheproof<G>(file: string): WycheproofFile<G> {
  return JSON.parse(readFileSync(sharedPath('vectors', 'wycheproof', file), 'utf8')) as WycheproofFile<G>;
}
