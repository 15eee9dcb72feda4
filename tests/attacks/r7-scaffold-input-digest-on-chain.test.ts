import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { FirnApp } from '../../packages/app/src/index.ts';
import { runWorkload } from '../../packages/app/src/testing.ts';
import { appInitCommand } from '../../packages/cli/src/commands/app.ts';
import { signedDataHash } from '../../packages/core/src/signedData.ts';

// R7, careless app developer. `firn app init` (and docs/guide-first-app.md step 1) hands every new
// developer a workload that signs `sha256(input plaintext)` onto the public data ledger, while the
// guide promises "the host sees only the code … Nothing else leaves the enclave". The record (its
// digest and its dataHash) reaches the host in clear (runJob's `signedData`) and then the chain.
// For any input an adversary can enumerate (a vote, a yes/no answer, a salary band, a phone
// number), the host or any chain reader recovers the requester's plaintext by hashing guesses.
// The secure outcome: what the scaffold publishes about an input does not confirm a guess of it.
const root = resolve(import.meta.dirname, '../..', 'tmp');
mkdirSync(root, { recursive: true });
const dir = mkdtempSync(join(root, 'r7-scaffold-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the scaffolded app, run exactly as generated', () => {
  it('publishes nothing about a low-entropy input that confirms a guess of it', async () => {
    appInitCommand(join(dir, 'hello'));
    const app = (await import(join(dir, 'hello', 'src', 'index.ts'))).default as FirnApp;
    // The requester's secret: one of a handful of values.
    const secret = 'vote: no';
    const r = await runWorkload(app, 'reverse', { inputs: { data: new TextEncoder().encode(secret) } });
    expect(r.records.length).toBe(1);
    const published = r.records[0]!;
    // The host (or anyone reading FirnDataLedger) hashes every candidate and compares.
    const candidates = ['vote: yes', 'vote: no', 'vote: abstain'];
    const recovered = candidates.filter((c) => {
      const d = sha256(new TextEncoder().encode(c));
      return signedDataHash(published.topic, d) === published.dataHash;
    });
    expect(recovered, 'the on-chain record confirms the plaintext input').toEqual([]);
  });
});
