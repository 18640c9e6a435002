/**
 * Third-party programs the interop tests drive, and what to do when one is
 * missing. On a machine without a peer, a file that needs it is skipped with
 * its reason in the test name and on stderr (`missing baresip: apt-get install
 * baresip-core`); with `RTCEDGE_REQUIRE_PEERS=1` (set by `.ci/run`, which
 * installs them) a missing peer fails the file instead, so CI skips nothing.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';

/** Debian package that provides each program; `a|b` means either name will do. */
const PACKAGES = {
  baresip: 'baresip-core',
  sipsak: 'sipsak',
  'svwar|sipvicious_svwar': 'sipvicious',
  'svcrack|sipvicious_svcrack': 'sipvicious',
  'svmap|sipvicious_svmap': 'sipvicious',
  sipp: 'sip-tester',
  turnutils_uclient: 'coturn',
  turnutils_peer: 'coturn',
  slapd: 'slapd',
  slapadd: 'slapd',
  'linphone-daemon': 'linphone-cli',
  openssl: 'openssl',
  valgrind: 'valgrind',
  named: 'bind9',
  kamailio: 'kamailio kamailio-tls-modules',
  'systemd-analyze': 'systemd',
  'redis-server': 'redis-server',
} as const satisfies Record<string, string>;

/** A peer program name as PACKAGES knows it. */
export type Peer = keyof typeof PACKAGES;

function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** The peers of `programs` that are not installed (a `a|b` entry counts as present when either is). */
export function missingPeers(programs: readonly Peer[]): Peer[] {
  return programs.filter((p) => !p.split('|').some(onPath));
}

/**
 * `describe` for a file whose tests need `programs`: vitest's own when all are
 * installed; otherwise a skipped suite whose name says what is missing and
 * which Debian packages provide it.
 *
 * @throws Error when a peer is missing and RTCEDGE_REQUIRE_PEERS is set.
 */
export function describeWithPeers(programs: readonly Peer[]): (name: string, fn: () => void) => void {
  const missing = missingPeers(programs);
  if (missing.length === 0) return (name, fn) => describe(name, fn);
  const packages = [...new Set(missing.map((p) => PACKAGES[p]))].join(' ');
  const reason = `missing ${missing.join(', ')}: apt-get install ${packages}`;
  if (process.env.RTCEDGE_REQUIRE_PEERS) throw new Error(`interop peer required (RTCEDGE_REQUIRE_PEERS is set): ${reason}`);
  process.stderr.write(`interop: skipping a file, ${reason}\n`);
  return (name, fn) => describe.skip(`${name} [skipped: ${reason}]`, fn);
}
