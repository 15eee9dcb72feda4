/**
 * A small seeded generator (sfc32, seeded through splitmix32) for shuffling, splits, dropout masks
 * and initial weights. Not cryptographic: it only has to be reproducible from the job's seed.
 */
export interface Prng {
  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** An independent generator derived from this one. */
  fork(): Prng;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createPrng(seed: number): Prng {
  if (!Number.isSafeInteger(seed)) throw new RangeError('seed must be a safe integer');
  // Mix high and low halves so seeds above 2^32 still differ.
  const sm = splitmix32((seed ^ Math.floor(seed / 2 ** 32)) >>> 0);
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) u32();
  const prng: Prng = {
    next: () => u32() / 2 ** 32,
    int: (n) => Math.floor((u32() / 2 ** 32) * n),
    normal: () => {
      const u = 1 - u32() / 2 ** 32;
      const v = u32() / 2 ** 32;
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    fork: () => createPrng(u32() * 2 ** 20 + (u32() >>> 12)),
  };
  return prng;
}

/** Fisher-Yates shuffle of 0..n-1 driven by the given generator. */
export function shuffledIndices(n: number, rng: Prng): Uint32Array {
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  return idx;
}
