/**
 * Read-only look into rtcedge's SQLite store (`<data_dir>/rtcedge.db`), so
 * tests check what was persisted, not what the server says.
 */
import Database from 'better-sqlite3';

/** A row of table `bindings` (columns as stored; expires in unix s). */
export interface BindingRow {
  aor: string;
  contact_uri: string;
  contact: string;
  expires: number;
  call_id: string;
  cseq: number;
  [column: string]: unknown;
}

/** Rows of `bindings`, optionally only those of one AOR (e.g. `sip:bob@example.test`), ordered by aor, contact_uri. */
export function readBindings(dbPath: string, aor?: string): BindingRow[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const rows =
      aor === undefined
        ? db.prepare('SELECT * FROM bindings ORDER BY aor, contact_uri').all()
        : db.prepare('SELECT * FROM bindings WHERE aor = ? ORDER BY contact_uri').all(aor);
    return rows as BindingRow[];
  } finally {
    db.close();
  }
}
