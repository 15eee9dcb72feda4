import { bytesEqual } from '@firn/core';
import type { SpdmReport } from './parseSpdmReport.ts';
import type { RimMeasurement } from './verifyRim.ts';

export interface MeasurementComparison {
  /** RIM indexes (0-based) whose reference values the report does not reproduce, ascending. */
  mismatchingIndexes: number[];
  /** Indexes active in more than one RIM (a RIM conflict, counted as mismatching too). */
  conflictingIndexes: number[];
  /** How many active reference values were compared. */
  compared: number;
}

/**
 * Compare a report's measurement blocks with the active reference values of its RIMs (driver
 * and VBIOS), the way NVIDIA's verifiers do: RIM index i is SPDM block i+1, and a block matches
 * when it equals one of the listed alternatives. It proves nothing about the RIMs themselves;
 * callers pass only RIMs that verifyRim accepted.
 */
export function compareMeasurements(
  report: Pick<SpdmReport, 'blocks'>,
  rims: readonly { measurements: readonly RimMeasurement[] }[],
): MeasurementComparison {
  const golden = new Map<number, RimMeasurement>();
  const conflicts = new Set<number>();
  for (const rim of rims)
    for (const m of rim.measurements) {
      if (!m.active) continue;
      if (golden.has(m.index)) conflicts.add(m.index);
      golden.set(m.index, m);
    }
  const runtime = new Map(report.blocks.map((b) => [b.index - 1, b.value]));
  const mismatching = new Set<number>(conflicts);
  for (const [index, m] of golden) {
    const value = runtime.get(index);
    if (value === undefined || !m.alternatives.some((a) => bytesEqual(a, value))) mismatching.add(index);
  }
  return {
    mismatchingIndexes: [...mismatching].sort((a, b) => a - b),
    conflictingIndexes: [...conflicts].sort((a, b) => a - b),
    compared: golden.size,
  };
}
