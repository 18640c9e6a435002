// Start and stop an rtcedge server for a benchmark: temp config, users added
// through the CLI, readiness by probing its UDP listeners.
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startProcess, runProcess, stopProcess, tempDir, waitFor, udpProbe, stunBinding, sipOptions,
} from './lib.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CLI = join(ROOT, 'dist', 'cli', 'main.js');

/**
 * @param {object} o
 * @param {number} [o.sipPort] UDP SIP listener
 * @param {number} [o.turnPort] UDP TURN listener (TURN disabled when absent)
 * @param {number} [o.dtlsPort] TURN over DTLS listener beside the UDP one (certificate generated in data_dir)
 * @param {[number, number]} [o.relayPorts]
 * @param {'native' | 'typescript'} [o.turnDataPlane] turn.data_plane (default: native when built)
 * @param {Array<[string, string]>} o.users [user, password] in example.test
 * @param {string} [o.logLevel] log.level (default warn)
 * @param {number} [o.summaryInterval] log.summary_interval, s (the info summary line; needs logLevel info)
 * @param {string[]} [o.nodeArgs] extra node options for the server process
 * @param {number} [o.addParallel] users added by this many CLI processes at once (default 1)
 * @param {string[]} [o.extraYaml] further top-level YAML lines (e.g. `store: {...}`)
 * @param {string} [o.cli] the CLI to run (default this checkout's dist/cli/main.js; another build for a baseline)
 * @param {number|'auto'} [o.workers] sip.workers (default: the configuration's default, auto)
 * @param {Array<{transport: 'tcp' | 'tls', port: number}>} [o.sipStreams] SIP TCP/TLS listeners on 127.0.0.1 beside the
 *   UDP one (TLS with the certificate generated in data_dir)
 * @param {string[]} [o.sipLines] more YAML lines under `sip:` (two-space indented, e.g. '  workers: auto')
 * @param {boolean} [o.importUsers] add the users with one `rtcedge user import` instead of one `user add` each
 */
export async function startRtcedge(o) {
  if (o.dataPlane && !dataPlaneKeySupported()) {
    throw new Error('this build has no turn.data_plane setting');
  }
  const CLI = o.cli ?? DEFAULT_CLI;
  const dir = tempDir('rtcedge');
  const cfg = join(dir, 'rtcedge.yaml');
  const lines = [
    `data_dir: ${join(dir, 'data')}`,
    'domains: [example.test]',
    `log: { level: ${o.logLevel ?? 'warn'}${o.summaryInterval !== undefined ? `, summary_interval: ${o.summaryInterval}` : ''} }`,
    'sip:',
    ...(o.workers !== undefined ? [`  workers: ${o.workers}`] : []),
    '  listen:',
    `    - { transport: udp, host: 127.0.0.1, port: ${o.sipPort} }`,
    ...(o.sipStreams ?? []).map((l) => `    - { transport: ${l.transport}, host: 127.0.0.1, port: ${l.port} }`),
    ...(o.sipLines ?? []),
    'turn:',
  ];
  if (o.turnPort) {
    lines.push(
      '  enabled: true',
      '  listen:',
      `    - { transport: udp, host: 127.0.0.1, port: ${o.turnPort} }`,
      ...(o.dtlsPort ? [`    - { transport: dtls, host: 127.0.0.1, port: ${o.dtlsPort} }`] : []),
      '  relay_address: 127.0.0.1',
      `  relay_port_min: ${o.relayPorts[0]}`,
      `  relay_port_max: ${o.relayPorts[1]}`,
      '  allow_loopback_peers: true',
      // Each uclient client leaves a probe allocation beside its real one: 10 clients of one user need 20.
      '  max_allocations_per_user: 100',
    );
    if (o.dataPlane) lines.push(`  data_plane: ${o.dataPlane}`);
    if (o.turnDataPlane) lines.push(`  data_plane: ${o.turnDataPlane}`);
  } else {
    lines.push('  enabled: false');
  }
  lines.push(...(o.extraYaml ?? []));
  writeFileSync(cfg, lines.join('\n') + '\n');
  const addOne = async ([user, pw]) => {
    const r = await runProcess(process.execPath, [CLI, 'user', 'add', `${user}@example.test`, '--password-stdin', '-c', cfg], {
      stdin: pw + '\n',
      timeoutMs: 20_000,
    });
    if (r.code !== 0) throw new Error(`rtcedge user add ${user} failed (${r.code}): ${r.stderr.trim()}`);
  };
  if (o.importUsers) {
    await importUsers(CLI, cfg, dir, o.users);
  } else {
    // The first one alone: it creates the store.
    const parallel = o.addParallel ?? 1;
    if (o.users.length) await addOne(o.users[0]);
    for (let i = 1; i < o.users.length; i += parallel) await Promise.all(o.users.slice(i, i + parallel).map(addOne));
  }
  const args = [...(o.nodeArgs ?? []), CLI, 'serve', '-c', cfg];
  const proc = startProcess(process.execPath, args);
  proc.cmdline = `node ${(o.nodeArgs ?? []).map((a) => a + ' ').join('')}dist/cli/main.js serve -c ${cfg}`;
  proc.config = cfg;
  proc.dir = dir;
  let exited = false;
  proc.exited.then(() => (exited = true));
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`rtcedge exited: ${proc.stderr.slice(-2000)}${proc.stdout.slice(-2000)}`);
      if (!(await udpProbe('127.0.0.1', o.sipPort, sipOptions('127.0.0.1', o.sipPort)))) return false;
      if (o.turnPort && !(await udpProbe('127.0.0.1', o.turnPort, stunBinding()))) return false;
      return true;
    }, 20_000, 'rtcedge to answer on its UDP ports');
  } catch (e) {
    await stopProcess(proc);
    throw e;
  }
  return proc;
}

/** `rtcedge user import` of [user, password] pairs (CSV in `dir`); throws with the CLI's stderr if it fails. */
async function importUsers(cli, cfg, dir, users) {
  const csv = join(dir, 'users.csv');
  writeFileSync(csv, ['user,password', ...users.map(([u, p]) => `${u},${p}`)].join('\n') + '\n');
  const r = await runProcess(process.execPath, [cli, 'user', 'import', csv, '-c', cfg], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`rtcedge user import failed (${r.code}): ${r.stderr.trim().slice(-2000)}`);
}

/**
 * Whether `rtcedge config check` accepts a config with these extra YAML lines under `sip:` (e.g. a key a
 * build may not know yet, like `sip.workers`); returns the CLI's complaint when it does not.
 */
export async function sipLinesAccepted(lines, cli = DEFAULT_CLI) {
  cli ??= DEFAULT_CLI;
  const dir = tempDir('rtcedge-check');
  const cfg = join(dir, 'rtcedge.yaml');
  writeFileSync(cfg, [`data_dir: ${join(dir, 'data')}`, 'domains: [example.test]', 'sip:', ...lines, 'turn: { enabled: false }'].join('\n') + '\n');
  const r = await runProcess(process.execPath, [cli, 'config', 'check', cfg], { timeoutMs: 20_000 });
  return r.code === 0 ? { ok: true } : { ok: false, message: (r.stderr || r.stdout).trim().replaceAll(dir, '$DIR') };
}

/** Whether the built config schema knows turn.data_plane (native | typescript). */
export function dataPlaneKeySupported() {
  try {
    return readFileSync(join(ROOT, 'dist', 'config', 'schema.js'), 'utf8').includes('data_plane');
  } catch {
    return false;
  }
}

/** Whether the native TURN data-plane addon has been built. */
export function nativeAddonBuilt() {
  return existsSync(join(ROOT, 'native', 'build', 'Release', 'rtcedge_turn.node'));
}
