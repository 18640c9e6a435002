/**
 * `rtcedge user import FILE.csv`: many users in one run.
 *
 * The file is CSV (RFC 4180, csv-parse; one record per line) with a header line naming the columns:
 * `user` (user[@domain], required), `password` (required), `phones` (optional,
 * numbers separated by spaces or `;`). A line that cannot be imported (bad
 * user name, unserved domain, empty password, existing user, taken or bad
 * number, wrong column count) is reported as `FILE:LINE: reason` and skipped;
 * every other line is stored. Users are written in transactions of 1000.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse as parseCsv } from 'csv-parse/sync';
import { SingleBar } from 'cli-progress';
import type { Config } from '../config/schema.js';
import { ALL_HA1_ALGORITHMS, credentialsFor, StoreError } from '../store/index.js';
import { openUserStore, type NewUser } from '../store/user-store.js';
import { CliError } from './errors.js';
import { parseUserSpec } from './user-commands.js';

/** Rows written per SQLite transaction. */
export const IMPORT_BATCH_ROWS = 1000;
/** Most per-line errors kept for the report (the count goes on). */
export const IMPORT_MAX_REPORTED_ERRORS = 1000;

/** Outcome of an import. */
export interface ImportResult {
  added: number;
  /** Lines skipped, with their 1-based line number in the file. */
  errors: { line: number; message: string }[];
  /** Skipped lines in all (may exceed errors.length). */
  skipped: number;
}

interface Row {
  user?: string;
  password?: string;
  phones?: string;
}

/**
 * Import the users of `file` into the store of `config`.
 *
 * @param progress show a progress bar on stderr (only drawn on a terminal).
 * @throws CliError when the file cannot be read, has no `user` and `password` columns, or is not CSV at all.
 */
export async function importUsers(config: Pick<Config, 'data_dir' | 'domains' | 'store'>, file: string, progress = true): Promise<ImportResult> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const store = await openUserStore(config);
  const bar = progress ? new SingleBar({ format: 'importing [{bar}] {percentage}% | {value}/{total} bytes | {added} added, {skipped} skipped', stream: process.stderr }) : undefined;
  bar?.start(size, 0, { added: 0, skipped: 0 });
  const result: ImportResult = { added: 0, errors: [], skipped: 0 };
  const skip = (line: number, message: string) => {
    result.skipped++;
    if (result.errors.length < IMPORT_MAX_REPORTED_ERRORS) result.errors.push({ line, message });
  };
  let batch: { line: number; row: Row }[] = [];
  const flush = async () => {
    const users: NewUser[] = [];
    const lines: number[] = [];
    for (const { line, row } of batch) {
      try {
        const spec = parseUserSpec(row.user ?? '', config);
        if (!row.password) throw new CliError('the password is empty');
        const phones = (row.phones ?? '').split(/[\s;]+/).filter((p) => p !== '');
        users.push({ ...spec, ha1: credentialsFor(spec.username, spec.domain, row.password, ALL_HA1_ALGORITHMS), phones });
        lines.push(line);
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        skip(line, err.message);
      }
    }
    batch = [];
    (await store.addUsers(users)).forEach((err, i) => {
      if (err) skip(lines[i]!, err.message);
      else result.added++;
    });
  };
  // Each line is one record, parsed on its own (csv-parse): a line with bad quoting or the wrong
  // number of fields is reported and skipped without swallowing the lines after it.
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let header: string[] | undefined;
  let lineNo = 0;
  let bytes = 0;
  try {
    for await (const text of lines) {
      lineNo++;
      bytes += Buffer.byteLength(text) + 1;
      if (text.trim() === '') continue;
      let fields: string[];
      try {
        const records = parseCsv(lineNo === 1 ? text.replace(/^\uFEFF/, '') : text, { trim: true }) as string[][];
        if (records.length !== 1) throw new Error('expected one record on the line');
        fields = records[0]!;
      } catch (err) {
        if (!header) throw new CliError(`${file}:${lineNo}: the header line is not CSV: ${(err as Error).message}`);
        skip(lineNo, `not CSV: ${(err as Error).message}`);
        continue;
      }
      if (!header) {
        header = fields.map((h) => h.toLowerCase());
        if (!header.includes('user') || !header.includes('password')) {
          throw new CliError(`${file}: the header line must name the columns user and password (and optionally phones)`);
        }
        continue;
      }
      if (fields.length !== header.length) {
        skip(lineNo, `expected ${header.length} fields (${header.join(',')}), found ${fields.length}`);
        continue;
      }
      batch.push({ line: lineNo, row: Object.fromEntries(header.map((h, k) => [h, fields[k]!])) as Row });
      if (batch.length >= IMPORT_BATCH_ROWS) await flush();
      bar?.update(bytes, { added: result.added, skipped: result.skipped });
    }
    await flush();
    result.errors.sort((a, b) => a.line - b.line);
  } catch (err) {
    if (err instanceof CliError || err instanceof StoreError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  } finally {
    bar?.update(size, { added: result.added, skipped: result.skipped });
    bar?.stop();
    await store.close();
  }
  return result;
}
