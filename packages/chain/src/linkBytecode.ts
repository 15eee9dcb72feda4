import { InvalidInputError } from '@firn/core';
import { type Address, type Hex, isAddress } from 'viem';

/**
 * Where a compiled contract expects external libraries' addresses, as solc's standard JSON output
 * gives it (`evm.bytecode.linkReferences`): source file, then library name, then the byte offsets
 * (`start`, `length` = 20) of each placeholder in the creation bytecode.
 */
export type LinkReferences = Readonly<
  Record<string, Readonly<Record<string, readonly { readonly start: number; readonly length: number }[]>>>
>;

/**
 * Link creation bytecode: write each library's address over every placeholder the compiler left
 * for it (solc's `__$<34 hex>$__`, at the offsets of `references`), as solc's own `--link` does.
 * `libraries` is keyed by library name (e.g. `FirnJobMarketAdmin`); a name may also be given as
 * `path:Name` when two sources define libraries of the same name.
 * Returns the linked bytecode (0x-prefixed hex). Throws InvalidInputError when a library has no
 * address in `libraries` or an invalid one, when an offset lies outside the bytecode or is not a
 * placeholder, or when a placeholder is left unlinked: deploying such bytecode would call
 * address 0x5f5f24... and revert on the first library call.
 */
export function linkBytecode(
  bytecode: Hex,
  references: LinkReferences,
  libraries: Readonly<Record<string, Address>>,
): Hex {
  let code = bytecode.slice(2);
  for (const [source, byName] of Object.entries(references)) {
    for (const [name, places] of Object.entries(byName)) {
      const address = libraries[`${source}:${name}`] ?? libraries[name];
      if (address === undefined)
        throw new InvalidInputError(`no address given for library ${source}:${name}`);
      if (!isAddress(address, { strict: false }))
        throw new InvalidInputError(`the address of library ${name} is not a 20-byte hex address`);
      const hexAddress = address.slice(2).toLowerCase();
      for (const { start, length } of places) {
        const from = start * 2;
        const to = from + length * 2;
        if (length !== 20 || to > code.length || !code.slice(from, to).startsWith('__$'))
          throw new InvalidInputError(
            `library ${name}: no placeholder at byte ${start} of the bytecode (link references out of date?)`,
          );
        code = code.slice(0, from) + hexAddress + code.slice(to);
      }
    }
  }
  if (code.includes('__$'))
    throw new InvalidInputError(
      'the bytecode still has a library placeholder that its link references do not name',
    );
  return `0x${code}`;
}
