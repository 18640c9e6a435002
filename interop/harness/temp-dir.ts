/**
 * Temporary directories for interop tests: one per test file, removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Creates a fresh directory under the OS temp dir, named `rtcedge-<prefix>-XXXXXX`.
 * Returns its absolute path.
 */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `rtcedge-${prefix}-`));
}

/**
 * Removes a directory tree made by makeTempDir. Keeps it when the environment
 * variable RTCEDGE_KEEP_TMP is set (for reading logs after a failure).
 */
export function removeTempDir(dir: string | undefined): void {
  if (dir === undefined || process.env.RTCEDGE_KEEP_TMP) return;
  rmSync(dir, { recursive: true, force: true });
}
