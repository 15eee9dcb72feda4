import { type FirnNode, NodeStatus } from '@firn/chain';
import type { Hex } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { chooseNode } from './attestNode.ts';
import type { NodeEligibility } from './chainView.ts';

// The automatic node choice (no --node): a first-party job passes the first-party image
// measurements and must never land on a developer app's node (docs/decisions/1090).
const FIRST_PARTY = `0x${'f1'.repeat(32)}` as Hex;
const APP = `0x${'a9'.repeat(32)}` as Hex;
const node = (n: number, measurement: Hex, over: Partial<FirnNode> = {}, allowed = true): NodeEligibility =>
  ({
    node: {
      enclaveId: `0x${n.toString(16).padStart(64, '0')}`,
      status: NodeStatus.Active,
      measurement,
      endpoint: `http://node${n}:8080`,
      ...over,
    } as FirnNode,
    measurementAllowed: allowed,
    block: { number: 1n, hash: `0x${'00'.repeat(32)}` },
  }) as unknown as NodeEligibility;

describe('chooseNode', () => {
  it('a first-party job skips an app node listed first and takes the first-party one', () => {
    const all = [node(1, APP), node(2, FIRST_PARTY)];
    expect(chooseNode(all, {})?.node.measurement).toBe(APP);
    expect(chooseNode(all, { measurements: [FIRST_PARTY] })?.node.measurement).toBe(FIRST_PARTY);
    // Case-insensitive, and the app node is never a fallback.
    expect(chooseNode(all, { measurements: [FIRST_PARTY.toUpperCase() as Hex] })?.node.enclaveId).toBe(
      all[1]!.node.enclaveId,
    );
    expect(chooseNode([node(1, APP)], { measurements: [FIRST_PARTY] })).toBeUndefined();
  });
  it('still skips excluded, inactive and (when others exist) non-allow-listed nodes', () => {
    const all = [
      node(1, FIRST_PARTY, { status: NodeStatus.Exiting }),
      node(2, FIRST_PARTY),
      node(3, FIRST_PARTY, {}, false),
      node(4, FIRST_PARTY),
    ];
    const ids = (e: NodeEligibility | undefined) => e?.node.enclaveId;
    expect(ids(chooseNode(all, { measurements: [FIRST_PARTY] }))).toBe(all[1]!.node.enclaveId);
    expect(ids(chooseNode(all, { measurements: [FIRST_PARTY], exclude: [all[1]!.node.enclaveId] }))).toBe(
      all[3]!.node.enclaveId,
    );
  });
  it('an explicit endpoint is not filtered by measurement (the requester chose it)', () => {
    const all = [node(1, APP), node(2, FIRST_PARTY)];
    expect(
      chooseNode(all, { node: 'http://node1:8080/', measurements: [FIRST_PARTY] })?.node.measurement,
    ).toBe(APP);
  });
});
