/**
 * A throwaway authoritative DNS server for tests: Debian's bind9 `named` in
 * the foreground (`-g`, logs on stderr) on 127.0.0.1 and a free high port,
 * with its own config, zone files and pidfile in a directory the test owns.
 * Nothing under /etc is read or written; no rndc (empty `controls`).
 * `reload` rewrites zone files and sends SIGHUP; `stop` ends it by its PID.
 */
import { writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { spawnProcess, type ManagedProcess } from './process.js';

/** Options of startNamed. */
export interface NamedOptions {
  /** Working directory (config, zones, pidfile); must exist. */
  dir: string;
  /** Zones served: origin (e.g. `beta.test`, `e164.arpa`) → zone file text. `$ORIGIN` is the zone's own; write names relative or with a trailing dot. */
  zones: Record<string, string>;
  /** UDP/TCP port on 127.0.0.1; default a free one. */
  port?: number;
}

/** A running named. */
export interface Named {
  /** `127.0.0.1:PORT`, the form `dns.servers` takes. */
  readonly server: string;
  readonly port: number;
  /** PID of the named process. */
  readonly pid: number;
  readonly process: ManagedProcess;
  /** Rewrites the given zone files (zones not listed keep theirs; give each a higher serial) and makes named reload them; resolves when named has loaded each. */
  reload(zones: Record<string, string>): Promise<void>;
  /** SIGTERM by PID, SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/** A UDP port on 127.0.0.1 that was free a moment ago (bound to 0, read, released). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** SOA and NS lines every test zone starts with (`ns.<origin>` at 127.0.0.1), then `body`. TTL default `ttlS` (s). */
export function zoneFile(origin: string, body: string, ttlS = 60, serial = 1): string {
  return [
    `$ORIGIN ${origin}.`,
    `$TTL ${ttlS}`,
    `@ IN SOA ns.${origin}. hostmaster.${origin}. ${serial} 3600 600 86400 1`,
    `@ IN NS ns.${origin}.`,
    `ns.${origin}. IN A 127.0.0.1`,
    body,
    '',
  ].join('\n');
}

/** Writes named.conf and the zones, starts named, waits until it logs `running` (bounded, 20 s). */
export async function startNamed(opts: NamedOptions): Promise<Named> {
  const port = opts.port ?? (await freeUdpPort());
  const dir = opts.dir;
  const zonePath = (origin: string): string => join(dir, `${origin}.zone`);
  const writeZones = (zones: Record<string, string>): void => {
    for (const [origin, text] of Object.entries(zones)) writeFileSync(zonePath(origin), text);
  };
  writeZones(opts.zones);
  const conf = join(dir, 'named.conf');
  writeFileSync(
    conf,
    [
      'options {',
      `  directory "${dir}";`,
      `  pid-file "${join(dir, 'named.pid')}";`,
      `  listen-on port ${port} { 127.0.0.1; };`,
      '  listen-on-v6 { none; };',
      '  recursion no;',
      '  dnssec-validation no;',
      '  notify no;',
      // Answers are exactly what the zone says: no minimal-responses surprises in tests.
      '  minimal-responses no;',
      '};',
      'controls { };',
      ...Object.keys(opts.zones).map((o) => `zone "${o}" { type primary; file "${zonePath(o)}"; };`),
      '',
    ].join('\n'),
  );
  const proc = spawnProcess('named', ['-g', '-c', conf, '-n', '1']);
  await proc.waitForLine((t) => t.endsWith(' running'), 20_000);
  return {
    server: `127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    process: proc,
    async reload(zones) {
      writeZones(zones);
      const from = proc.lines.length;
      process.kill(proc.pid, 'SIGHUP');
      // named logs "reloading zones succeeded" before the zones are read: wait for each zone's own line.
      for (const origin of Object.keys(zones)) {
        await proc.waitForLine((t) => t.includes(`zone ${origin}/IN: loaded serial`), 20_000, from);
      }
    },
    async stop() {
      await proc.stop(3000);
    },
  };
}
