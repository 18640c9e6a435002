/**
 * The ban list on disk: the server writes the active bans to
 * `data_dir/bans.json` after each change (at most every 500 ms), and
 * `rtcedge bans` reads it. Format: `{ "written": ISO time, "bans": Ban[] }`,
 * times in ms since the epoch.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Ban } from '../security/ban-list.js';
import { DATA_DIR_FILES, dataDirLayout, SECRET_FILE_MODE } from '../config/data-dir.js';
import type { Logger } from '../log.js';

/** Name of the file under data_dir. */
export const BAN_FILE = DATA_DIR_FILES.bans;

/** Debounced writer of `data_dir/bans.json`. */
export class BanFileWriter {
  private pending: Ban[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;

  constructor(
    dataDir: string,
    private readonly logger: Logger,
    private readonly delayMs = 500,
  ) {
    this.path = dataDirLayout(dataDir).bans;
  }

  /** Schedule writing these bans (the latest call wins). */
  update(bans: Ban[]): void {
    this.pending = bans;
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.delayMs);
    this.timer.unref();
  }

  /** Write now if an update is pending (also called at stop). Errors are logged, not thrown. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const bans = this.pending;
    if (!bans) return;
    this.pending = undefined;
    try {
      const tmp = `${this.path}.tmp`;
      writeFileSync(tmp, JSON.stringify({ written: new Date().toISOString(), bans }, null, 1) + '\n', { mode: SECRET_FILE_MODE });
      renameSync(tmp, this.path);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, path: this.path }, 'cannot write ban list');
    }
  }
}

/**
 * Active bans from `data_dir/bans.json` at `now` (ms); [] when the file does not exist.
 * @throws Error when the file exists but is not a ban list.
 */
export function readBanFile(dataDir: string, now: number = Date.now()): Ban[] {
  const path = dataDirLayout(dataDir).bans;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const data = JSON.parse(text) as { bans?: Ban[] };
  if (!Array.isArray(data.bans)) throw new Error(`${path} is not a ban list`);
  return data.bans.filter((b) => b.until > now);
}
