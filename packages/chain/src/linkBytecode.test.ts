import { InvalidInputError } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { firnJobMarketBytecode, firnJobMarketLinkReferences } from './abi/generated.ts';
import { linkBytecode } from './linkBytecode.ts';

const LIB = '0x00000000000000000000000000000000000A1b2C';
const libHex = LIB.slice(2).toLowerCase();

describe('linkBytecode', () => {
  it("writes the library's address at every place the compiler left for it, and nowhere else", () => {
    const places = firnJobMarketLinkReferences['src/FirnJobMarketAdmin.sol'].FirnJobMarketAdmin;
    expect(places.length).toBeGreaterThan(0);
    expect(firnJobMarketBytecode).toContain('__$');
    const linked = linkBytecode(firnJobMarketBytecode, firnJobMarketLinkReferences, {
      FirnJobMarketAdmin: LIB,
    });
    expect(linked).not.toContain('__$');
    expect(linked.length).toBe(firnJobMarketBytecode.length);
    for (const { start } of places) expect(linked.slice(2 + start * 2, 2 + start * 2 + 40)).toBe(libHex);
    // Outside the placeholders the bytecode is unchanged.
    let rest = firnJobMarketBytecode as string;
    for (const { start } of places)
      rest = rest.slice(0, 2 + start * 2) + libHex + rest.slice(2 + start * 2 + 40);
    expect(linked).toBe(rest);
  });

  it('takes the library by path:Name as well', () => {
    const linked = linkBytecode(firnJobMarketBytecode, firnJobMarketLinkReferences, {
      'src/FirnJobMarketAdmin.sol:FirnJobMarketAdmin': LIB,
    });
    expect(linked).not.toContain('__$');
  });

  it('refuses to leave a placeholder: a missing library, a bad address, stale offsets', () => {
    expect(() => linkBytecode(firnJobMarketBytecode, firnJobMarketLinkReferences, {})).toThrow(
      InvalidInputError,
    );
    expect(() => linkBytecode(firnJobMarketBytecode, firnJobMarketLinkReferences, {})).toThrow(
      /no address given for library src\/FirnJobMarketAdmin.sol:FirnJobMarketAdmin/,
    );
    expect(() =>
      linkBytecode(firnJobMarketBytecode, firnJobMarketLinkReferences, {
        FirnJobMarketAdmin: '0x1234' as never,
      }),
    ).toThrow(/not a 20-byte hex address/);
    const stale = { 'src/FirnJobMarketAdmin.sol': { FirnJobMarketAdmin: [{ start: 1, length: 20 }] } };
    expect(() => linkBytecode(firnJobMarketBytecode, stale, { FirnJobMarketAdmin: LIB })).toThrow(
      /no placeholder at byte 1/,
    );
    // References that name fewer places than the bytecode has leave a placeholder behind.
    const places = firnJobMarketLinkReferences['src/FirnJobMarketAdmin.sol'].FirnJobMarketAdmin;
    const partial = { 'src/FirnJobMarketAdmin.sol': { FirnJobMarketAdmin: places.slice(0, -1) } };
    expect(() => linkBytecode(firnJobMarketBytecode, partial, { FirnJobMarketAdmin: LIB })).toThrow(
      /still has a library placeholder/,
    );
  });
});
