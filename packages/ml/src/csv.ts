import { FirnError, TooLargeError } from '@firn/core';
import { CsvError, parse as parseCsvText } from 'csv-parse/sync';
import { isDecodeVerdict } from './decodeVerdict.ts';
import type { Dataset } from './dataset.ts';
import type { Task } from './modelDefinition.ts';

export interface CsvOptions {
  task: Task;
  /** true, false, or 'auto' (default): a first row with a text cell where the second row has a number is a header. */
  header?: boolean | 'auto';
  /** Column name (needs a header), zero-based index, or 'last' (default). */
  target?: string | number | 'last';
  delimiter?: string;
  maxBytes?: number;
  maxRows?: number;
  maxCols?: number;
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function dataError(message: string, details?: Record<string, number | string>): FirnError {
  return new FirnError('E_DATA_INVALID', `CSV: ${message}`, details ? { details } : {});
}

/**
 * Split CSV text into records as csv-parse does (RFC 4180: a double-quoted field may hold the
 * delimiter, a line break (LF or CRLF) and "" for a quote). Blank lines are skipped and fields
 * trimmed; rows of unequal width are reported by the caller, which knows the header. csv-parse's
 * own messages can quote data, so only its error code and record number are passed on. A plain
 * table (no quote; see `splitPlainRecords`) is split by a faster loop with the same result;
 * `engine: 'csv-parse'` forces the general parser (the tests compare the two). Raises
 * E_DATA_INVALID (more than maxRows rows, a row over maxCols columns, a parse error).
 */
export function splitRecords(
  text: string,
  delim: string,
  maxRows: number,
  maxCols: number,
  engine: 'auto' | 'csv-parse' = 'auto',
): string[][] {
  let rows: string[][] | undefined = engine === 'auto' ? splitPlainRecords(text, delim, maxRows) : undefined;
  if (rows === undefined) rows = splitWithCsvParse(text, delim, maxRows);
  if (rows.length > maxRows + 1) throw dataError(`more than ${maxRows} rows`);
  rows = rows.filter((r) => !(r.length === 1 && r[0] === ''));
  rows.forEach((r, i) => {
    if (r.length > maxCols) throw dataError(`row ${i + 1} has more than ${maxCols} columns`, { row: i + 1 });
  });
  return rows;
}

/** csv-parse's largest record, characters (as its max_record_size below). */
const MAX_RECORD_CHARS = 64 * 1024 * 1024;

/** Characters csv-parse's `trim` drops before a field (its right trim is String#trimEnd). */
const isLeftTrimmed = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10 || c === 12;

/**
 * The records of a CSV without a double quote, a lone carriage return, a second byte-order mark
 * or an over-long line, split as csv-parse splits them with the options of `splitWithCsvParse`
 * (LF or CRLF records, fields trimmed as its `trim` does, blank lines skipped, at most
 * maxRows + 2 records); undefined for any other text, which csv-parse then parses. Most datasets
 * are such plain tables, and this loop runs several times faster than the general parser, more on
 * a cold JIT (a fresh ML child). Equivalence is tested against csv-parse on random tables
 * (csv.test.ts).
 */
function splitPlainRecords(text: string, delim: string, maxRows: number): string[][] | undefined {
  if (delim.length !== 1 || ' \t\f\r\n"'.includes(delim)) return undefined;
  if (text.includes('"') || text.charCodeAt(0) === 0xfeff) return undefined;
  const rows: string[][] = [];
  const n = text.length;
  for (let start = 0; start < n; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = n;
    const lineEnd = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    if (lineEnd - start > MAX_RECORD_CHARS) return undefined;
    const line = text.slice(start, lineEnd);
    start = end + 1;
    if (line.includes('\r')) return undefined;
    const fields = line.split(delim);
    let blank = false;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      let a = 0;
      while (a < f.length && isLeftTrimmed(f.charCodeAt(a))) a++;
      blank = fields.length === 1 && a === f.length;
      fields[i] = (a === 0 ? f : f.slice(a)).trimEnd();
    }
    // A line of nothing but left-trimmed characters is an empty line to csv-parse: skipped, uncounted.
    if (blank) continue;
    rows.push(fields);
    if (rows.length >= maxRows + 2) break;
  }
  return rows;
}

function splitWithCsvParse(text: string, delim: string, maxRows: number): string[][] {
  let rows: string[][];
  try {
    rows = parseCsvText(text, {
      delimiter: delim,
      bom: true,
      // Both line endings in one file (CRLF rows joined with LF) are records; quoted ones stay in their field.
      record_delimiter: ['\r\n', '\n'],
      skip_empty_lines: true,
      skip_records_with_empty_values: false,
      relax_column_count: true,
      trim: true,
      to: maxRows + 2,
      max_record_size: 64 * 1024 * 1024,
    }) as string[][];
  } catch (e) {
    // Only the parser's verdict on the text is a data error; anything else (an allocation failure
    // under memory the host starves) stays untyped, so the enclave never signs it (decision 1595).
    if (!(e instanceof CsvError)) throw e;
    const err = e as { code?: unknown; records?: unknown };
    const code = typeof err.code === 'string' ? err.code : 'CSV_PARSE_ERROR';
    const row = typeof err.records === 'number' ? err.records + 1 : undefined;
    const what =
      code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'has an unterminated quote'
        : code === 'CSV_INVALID_CLOSING_QUOTE'
          ? 'has text after a quoted field'
          : `cannot be parsed (${code})`;
    throw dataError(
      row === undefined ? `the CSV ${what}` : `row ${row} ${what}`,
      row === undefined ? {} : { row },
    );
  }
  return rows;
}

const isNumber = (s: string): boolean => NUMBER_RE.test(s);

/**
 * Parse a CSV table into a numeric dataset: features must be numbers, the target is a class label
 * (mapped to indices, sorted) or a number (regression). Errors are E_DATA_INVALID with row and column.
 */
export function parseCsv(input: string | Uint8Array, opts: CsvOptions): Dataset {
  const maxBytes = opts.maxBytes ?? 512 * 1024 * 1024;
  const maxRows = opts.maxRows ?? 10_000_000;
  const maxCols = opts.maxCols ?? 10_000;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new TooLargeError('CSV', size, maxBytes);
  let text: string;
  try {
    text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch (cause) {
    if (!isDecodeVerdict(cause)) throw cause;
    throw new FirnError('E_DATA_INVALID', 'CSV is not valid UTF-8', { cause });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows = splitRecords(text, opts.delimiter ?? ',', maxRows, maxCols);
  if (rows.length === 0) throw dataError('no rows');
  const first = rows[0]!;
  let header = opts.header ?? 'auto';
  if (header === 'auto') {
    const second = rows[1];
    header = second
      ? first.some((f, c) => !isNumber(f) && second[c] !== undefined && isNumber(second[c]!))
      : first.every((f) => !isNumber(f));
  }
  const names = header ? first : first.map((_, c) => `column${c}`);
  const body = header ? rows.slice(1) : rows;
  if (body.length === 0) throw dataError('no data rows');
  const width = names.length;
  if (width < 2) throw dataError('needs at least one feature column and a target column');
  const t = opts.target ?? 'last';
  let target: number;
  if (t === 'last') target = width - 1;
  else if (typeof t === 'number') {
    if (!Number.isInteger(t) || t < 0 || t >= width)
      throw dataError(`target column index ${t} is not in 0..${width - 1}`);
    target = t;
  } else {
    if (!header) throw dataError(`target column "${t}" given by name, but the CSV has no header`);
    target = names.indexOf(t);
    if (target < 0) throw dataError(`target column "${t}" not found`);
  }
  const cols = width - 1;
  const n = body.length;
  const x = new Float32Array(n * cols);
  const rawTargets: string[] = new Array(n);
  const rowOffset = header ? 2 : 1;
  for (let r = 0; r < n; r++) {
    const fields = body[r]!;
    // Report 1-based record numbers as a spreadsheet shows rows (a quoted line break stays in its row).
    const line = r + rowOffset;
    if (fields.length !== width)
      throw dataError(`row ${line} has ${fields.length} columns, expected ${width}`, { row: line });
    let k = 0;
    for (let c = 0; c < width; c++) {
      const f = fields[c]!;
      if (c === target) {
        if (f === '')
          throw dataError(`row ${line} column ${names[c]} (target) is missing`, {
            row: line,
            column: names[c]!,
          });
        rawTargets[r] = f;
        continue;
      }
      if (!isNumber(f))
        throw dataError(`row ${line} column ${names[c]} is ${f === '' ? 'missing' : 'not a number'}`, {
          row: line,
          column: names[c]!,
        });
      x[r * cols + k++] = Number(f);
    }
  }
  const featureNames = names.filter((_, c) => c !== target);
  const y = new Float32Array(n);
  if (opts.task === 'regression') {
    for (let r = 0; r < n; r++) {
      if (!isNumber(rawTargets[r]!))
        throw dataError(`row ${r + rowOffset} target is not a number`, {
          row: r + rowOffset,
          column: names[target]!,
        });
      y[r] = Number(rawTargets[r]);
    }
    return { x, y, rows: n, cols, yCols: 1, featureNames };
  }
  const distinct = [...new Set(rawTargets)];
  const numeric = distinct.every(isNumber);
  distinct.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
  if (distinct.length < 2) throw dataError('the target has fewer than 2 classes');
  if (distinct.length > 65536) throw dataError('the target has more than 65536 classes');
  const index = new Map(distinct.map((l, i) => [l, i]));
  for (let r = 0; r < n; r++) y[r] = index.get(rawTargets[r]!)!;
  return { x, y, rows: n, cols, yCols: 1, labels: distinct, featureNames };
}

/**
 * Pick the CSV delimiter from the first non-empty line: the most frequent of , ; tab | outside
 * double quotes, ',' when none occurs. Public datasets (e.g. UCI wine quality) often use ';'.
 */
export function sniffDelimiter(bytes: Uint8Array): string {
  // Only the first non-empty line of the first 64 KiB is decoded: the dataset is parsed once, by parseCsv.
  const limit = Math.min(bytes.length, 64 * 1024);
  const decoder = new TextDecoder();
  let line = '';
  for (let start = 0; start < limit; ) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 || nl > limit ? limit : nl;
    const l = decoder.decode(bytes.subarray(start, end));
    if (l.trim() !== '') {
      line = l;
      break;
    }
    start = end + 1;
  }
  const counts = new Map<string, number>([
    [',', 0],
    [';', 0],
    ['\t', 0],
    ['|', 0],
  ]);
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, counts.get(ch)! + 1);
  }
  let best = ',';
  let n = 0;
  for (const [d, c] of counts)
    if (c > n) {
      best = d;
      n = c;
    }
  return best;
}
