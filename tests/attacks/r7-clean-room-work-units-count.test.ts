import { describe, expect, it } from 'vitest';
import app from '../../examples/clean-room/src/index.ts';
import { runWorkload } from '../../packages/app/src/testing.ts';

// R7, careless app developer (the shipped example a developer copies). examples/clean-room promises
// Alice and Bob learn "how many IDs they share, and nothing else: not which, not how many the other
// holds". Its workload reports `workUnits = left.size + right.size` (distinct IDs). workUnits is
// committed in the Work Proof, emitted by FirnJobMarket's ProofSubmitted and kept in the host's job
// record: public. Alice knows her own count, so she reads Bob's distinct-ID count off the chain
// (and the host and any chain reader learn the sum). Not a size leak: Bob's two lists below are the
// same number of bytes (so the same sealed size) and differ only in how many distinct IDs they hold.
// Secure outcome: the public workUnits does not tell Bob's two lists apart.
const enc = (lines: string[]) => new TextEncoder().encode(`${lines.join('\n')}\n`);
const ids = (p: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${p}${String(i).padStart(4, '0')}`);

describe('clean-room example: what the public Work Proof says about the other party', () => {
  it("does not reveal how many distinct IDs Bob's list holds", async () => {
    const alice = enc(ids('cust-', 20));
    // Bob's lists: 40 lines each, equal bytes; 40 distinct IDs, or 12 distinct IDs repeated.
    const bobMany = enc(ids('cust-', 40));
    const few = ids('cust-', 12);
    const bobFew = enc(Array.from({ length: 40 }, (_, i) => few[i % 12]!));
    expect(bobFew.length).toBe(bobMany.length);

    const many = await runWorkload(app, 'overlap', { inputs: { left: alice, right: bobMany } });
    const fewRun = await runWorkload(app, 'overlap', { inputs: { left: alice, right: bobFew } });
    // What Alice (and the host, and anyone) reads from ProofSubmitted, minus her own 20 IDs:
    const bobCountSeen = (w: bigint) => w - 20n;
    expect(
      bobCountSeen(many.workUnits) === bobCountSeen(fewRun.workUnits),
      `the on-chain workUnits gives Bob's distinct-ID count: ${bobCountSeen(many.workUnits)} vs ${bobCountSeen(fewRun.workUnits)}`,
    ).toBe(true);
  });
});
