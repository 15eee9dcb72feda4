/**
 * Places for result checks running at once (docs/decisions/1832-node-facing-fetches.md): at most
 * `total` in all and `perNode` for one node, granted first come first served among those a place
 * is free for. Every proved job is checked, and retried every few seconds while its result is
 * missing; without a bound, a node with many proofs (or many nodes) would have the verifier
 * download and hash all their outputs at once. A node's own checks wait behind each other, not
 * behind the other nodes' beyond their turn in the total.
 */
export class ResultCheckSlots {
  private running = 0;
  private readonly byNode = new Map<string, number>();
  private readonly waiting: { node: string; grant: () => void }[] = [];

  constructor(
    readonly total: number,
    readonly perNode: number,
  ) {
    if (!(Number.isInteger(total) && total >= 1 && Number.isInteger(perNode) && perNode >= 1))
      throw new RangeError('result check slots: total and perNode must be integers >= 1');
  }

  /** Checks running now, in all. */
  get active(): number {
    return this.running;
  }

  /** Checks waiting for a place. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Wait for a place for one check of `node` (its Enclave ID); resolves to the function that gives
   * it back (calling it again does nothing).
   */
  acquire(node: string): Promise<() => void> {
    const key = node.toLowerCase();
    return new Promise((resolve) => {
      this.waiting.push({ node: key, grant: () => resolve(this.releaser(key)) });
      this.grant();
    });
  }

  private grant(): void {
    for (let i = 0; i < this.waiting.length && this.running < this.total; ) {
      const w = this.waiting[i]!;
      const n = this.byNode.get(w.node) ?? 0;
      if (n >= this.perNode) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.running++;
      this.byNode.set(w.node, n + 1);
      w.grant();
    }
  }

  private releaser(node: string): () => void {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.running--;
      const n = (this.byNode.get(node) ?? 1) - 1;
      if (n === 0) this.byNode.delete(node);
      else this.byNode.set(node, n);
      this.grant();
    };
  }
}
