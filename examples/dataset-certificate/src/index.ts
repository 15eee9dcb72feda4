import { defineApp, FirnError } from '@firn/app';
import { sha256 } from '@noble/hashes/sha2.js';

/**
 * A dataset certificate. A data seller seals a CSV dataset and grants it to this enclave; the
 * enclave computes facts a buyer wants to know before buying (row and column counts, the column
 * names, the share of empty cells per column, the SHA-256 of the exact bytes) and signs the
 * certificate's digest onto the data ledger. The seller publishes the certificate; a buyer who
 * later receives the dataset checks its SHA-256 against it, and anyone checks with `firn data
 * verify` that a registered enclave running this app's measurement issued it. The rows never
 * leave the enclave.
 *
 * Public fields (docs/decisions/1769-app-public-fields.md): the signed digest is an unsalted
 * SHA-256 of the certificate on purpose, since the certificate is made to be published and
 * checked by hashing; it covers the dataset's SHA-256, so it confirms a guess only of the whole
 * dataset. `workUnits` is the dataset's byte size (its sealed file shows it anyway), not its row
 * count: a seller who keeps a certificate private does not publish the row count through it.
 */

export const MAX_DATASET_BYTES = 256 * 1024 * 1024;
export const MAX_COLUMNS = 1024;

export interface DatasetCertificate {
  format: 'firn-example/dataset-certificate/v1';
  sha256: string;
  bytes: number;
  rows: number;
  columns: string[];
  /** Share of empty cells per column, in [0, 1], rounded to 4 decimals. */
  emptyShare: number[];
}

const hex = (b: Uint8Array) => `0x${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;

/** Certify a CSV (header row, comma-separated, no quoted commas). Raises E_INPUT_INVALID naming the row. */
export function certify(bytes: Uint8Array): DatasetCertificate {
  if (bytes.length > MAX_DATASET_BYTES)
    throw new FirnError('E_INPUT_INVALID', `the dataset is over ${MAX_DATASET_BYTES} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FirnError('E_INPUT_INVALID', 'the dataset is not UTF-8 text');
  }
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = lines[0]?.split(',').map((c) => c.trim());
  if (header === undefined || header.length === 0 || header.length > MAX_COLUMNS)
    throw new FirnError('E_INPUT_INVALID', `the dataset needs a header row of 1..${MAX_COLUMNS} columns`);
  const empty = new Array<number>(header.length).fill(0);
  for (let i = 1; i < lines.length; i++) {
    const cells = lines[i]!.split(',');
    // Row numbers, never cell values: the message is sealed to the requester anyway.
    if (cells.length !== header.length)
      throw new FirnError(
        'E_INPUT_INVALID',
        `row ${i + 1} has ${cells.length} cells, the header ${header.length}`,
      );
    cells.forEach((c, j) => {
      if (c.trim().length === 0) empty[j]! += 1;
    });
  }
  const rows = lines.length - 1;
  return {
    format: 'firn-example/dataset-certificate/v1',
    sha256: hex(sha256(bytes)),
    bytes: bytes.length,
    rows,
    columns: header,
    emptyShare: empty.map((e) => (rows === 0 ? 0 : Math.round((e / rows) * 10_000) / 10_000)),
  };
}

export default defineApp({
  name: 'dataset-certificate',
  version: '1.0.0',
  workloads: {
    /** Input `data` (CSV); output `certificate` (JSON), whose SHA-256 the enclave signs for the ledger. */
    async certify(ctx) {
      const data = ctx.input('data');
      const cert = certify(data);
      const bytes = new TextEncoder().encode(`${JSON.stringify(cert)}\n`);
      await ctx.signData(sha256(bytes), { topic: 'dataset-certificate' });
      return {
        outputs: [{ role: 'certificate', contentType: 'application/json', bytes }],
        // Public (Work Proof, chain): the input's byte size, never a count read from the rows.
        workUnits: BigInt(data.length),
      };
    },
  },
});
