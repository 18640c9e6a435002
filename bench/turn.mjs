// TURN relay benchmark: the same turnutils_uclient load (UDP, ChannelData,
// echoed by a turnutils_peer on loopback) against rtcedge's TURN server and
// against coturn. Reports relayed packets per second, loss, server CPU seconds
// and packets per CPU-second.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  startProcess, stopProcess, stopPid, tempDir, cpuSeconds, sleep, waitFor, udpProbe, stunBinding, readPidFile,
} from './lib.mjs';
import { startRtcedge, dataPlaneKeySupported, nativeAddonBuilt } from './rtcedge.mjs';

const PEER_PORT = 28491;
const RTCEDGE_SIP = 28060;
const RTCEDGE_TURN = 28478;
const COTURN_PORT = 28578;

/**
 * Load shapes: clients (-m), messages per client (-n), bytes per message (-l),
 * per-client send interval in ms (-z; 0 sends as fast as uclient can, in bursts).
 */
export const TURN_LOADS = [
  { clients: 10, messages: 2000, bytes: 100, intervalMs: 1 },
  { clients: 10, messages: 2000, bytes: 1000, intervalMs: 5 },
  { clients: 10, messages: 2000, bytes: 100, intervalMs: 0 },
];

function uclientArgs(port, load, extra = []) {
  return [
    '-oL', 'turnutils_uclient', ...extra,
    '-u', 'alice', '-w', 'alicepw', '-p', String(port),
    '-e', '127.0.0.1', '-r', String(PEER_PORT),
    '-m', String(load.clients), '-n', String(load.messages), '-l', String(load.bytes),
    '-c', '-z', String(load.intervalMs), '127.0.0.1',
  ];
}

/**
 * Run one uclient load against a server process tree `serverPid`. The transmit
 * phase is timed from uclient's "Total connect time" line to its
 * "Total transmit time" line, and server CPU is sampled at the same moments.
 */
export async function runLoad(serverPid, port, load, extra = []) {
  const args = uclientArgs(port, load, extra);
  const marks = {};
  let buf = '';
  const onLine = (line) => {
    if (line.includes('Total connect time') && !marks.connected) {
      marks.connected = performance.now();
      marks.cpu0 = cpuSeconds(serverPid);
    }
    if (line.includes('Total transmit time') && !marks.done) {
      marks.done = performance.now();
      marks.cpu1 = cpuSeconds(serverPid);
    }
  };
  const cpuStart = cpuSeconds(serverPid);
  const t0 = performance.now();
  const p = startProcess('stdbuf', args, {
    onStdout: (s) => {
      buf += s;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
  });
  const limitMs = 90_000;
  const res = await Promise.race([p.exited, sleep(limitMs).then(() => 'timeout')]);
  if (res === 'timeout') await stopProcess(p);
  const wallMs = performance.now() - t0;
  const cpuEnd = cpuSeconds(serverPid);
  const out = p.stdout + p.stderr;
  const num = (re) => {
    const all = [...out.matchAll(re)];
    return all.length ? Number(all[all.length - 1][1]) : NaN;
  };
  const sent = num(/tot_send_msgs=(\d+)/g);
  const recv = num(/tot_recv_msgs=(\d+)/g);
  const lostPct = num(/Total lost packets \d+ \(([\d.]+)%\)/g);
  const rtt = num(/Average round trip delay ([\d.]+) ms/g);
  const transmitMs = marks.connected && marks.done ? marks.done - marks.connected : NaN;
  const cpuTransmit = marks.cpu1 !== undefined ? marks.cpu1 - marks.cpu0 : NaN;
  // Every echoed message crossed the relay twice: client -> peer and peer -> client.
  const relayed = Number.isFinite(recv) ? 2 * recv : NaN;
  return {
    command: args.slice(2).join(' '),
    exit: res === 'timeout' ? 'timeout' : res,
    failed: res !== 0 || /Cannot complete Allocation/.test(out),
    sent,
    recv,
    lostPct,
    rttMs: rtt,
    wallS: wallMs / 1000,
    transmitS: transmitMs / 1000,
    relayedPerS: relayed / (transmitMs / 1000),
    cpuS: cpuEnd - cpuStart,
    cpuTransmitS: cpuTransmit,
    pktPerCpuS: relayed / (cpuEnd - cpuStart),
    tail: out.split('\n').slice(-6).join('\n'),
  };
}

export async function startPeer() {
  const p = startProcess('turnutils_peer', ['-L', '127.0.0.1', '-p', String(PEER_PORT)]);
  await sleep(300);
  return p;
}

export async function startCoturn(extraConf = []) {
  const dir = tempDir('coturn');
  const conf = join(dir, 'turnserver.conf');
  const pidfile = join(dir, 'turnserver.pid');
  writeFileSync(
    conf,
    [
      `listening-port=${COTURN_PORT}`,
      'listening-ip=127.0.0.1',
      'relay-ip=127.0.0.1',
      'min-port=28700',
      'max-port=28899',
      'lt-cred-mech',
      'user=alice:alicepw',
      'realm=example.test',
      'no-cli',
      ...(extraConf.length ? extraConf : ['no-tls', 'no-dtls']),
      'no-rfc5780',
      'allow-loopback-peers',
      `pidfile=${pidfile}`,
      `log-file=${join(dir, 'turnserver.log')}`,
      'no-stdout-log',
      '',
    ].join('\n'),
  );
  const proc = startProcess('turnserver', ['-c', conf]);
  proc.cmdline = `turnserver -c ${conf}`;
  const tlsConf = extraConf.length ? extraConf.map((l) => l.replace(/=.*\//, '=…/')).join(' ') : 'no-tls no-dtls';
  proc.confText = `listening-port=${COTURN_PORT} listening-ip=127.0.0.1 relay-ip=127.0.0.1 min-port=28700 max-port=28899 lt-cred-mech user=alice:alicepw realm=example.test no-cli ${tlsConf} no-rfc5780 allow-loopback-peers pidfile=… log-file=… no-stdout-log`;
  proc.pidfile = pidfile;
  try {
    await waitFor(async () => {
      if (proc.child.exitCode !== null) throw new Error(`turnserver exited: ${proc.stderr.slice(-1000)}`);
      return udpProbe('127.0.0.1', COTURN_PORT, stunBinding());
    }, 15_000, 'coturn');
  } catch (e) {
    await stopProcess(proc);
    throw e;
  }
  return proc;
}

export async function stopCoturn(proc) {
  const pid = readPidFile(proc.pidfile);
  await stopProcess(proc);
  // turnserver runs in the foreground here; the PID file names the same process.
  if (pid && pid !== proc.pid) await stopPid(pid);
}

/** Run all loads against every server; returns rows for the report. */
export async function runTurnBench(log = console.log) {
  const rows = [];
  const notes = [];
  const commands = [];
  const peer = await startPeer();
  commands.push(`turnutils_peer -L 127.0.0.1 -p ${PEER_PORT}`);
  try {
    // (a) rtcedge with the TypeScript data path, (b) with the native data plane
    const planes = [{ name: 'rtcedge (TypeScript data path)', plane: dataPlaneKeySupported() ? 'typescript' : undefined }];
    if (dataPlaneKeySupported() && nativeAddonBuilt()) planes.push({ name: 'rtcedge (native)', plane: 'native' });
    for (const { name, plane } of planes) {
      let server;
      try {
        server = await startRtcedge({
          sipPort: RTCEDGE_SIP,
          turnPort: RTCEDGE_TURN,
          relayPorts: [28600, 28699],
          users: [['alice', 'alicepw']],
          dataPlane: plane,
        });
        commands.push(`rtcedge: ${server.cmdline}  (turn.listen udp 127.0.0.1:${RTCEDGE_TURN}, relay 127.0.0.1:28600-28699, allow_loopback_peers, log.level warn${plane ? ', data_plane ' + plane : ''})`);
        for (const load of TURN_LOADS) {
          const r = await runLoad(server.pid, RTCEDGE_TURN, load);
          commands.push(`turnutils_uclient ${r.command}`);
          rows.push({ server: name, load, ...r });
          log(fmtRow(rows[rows.length - 1]));
        }
      } catch (e) {
        notes.push(`${name} run failed: ${e.message}`);
        log(`${name} run failed: ${e.message}`);
        if (plane === 'native') rows.push({ server: name, notBuilt: true, why: 'did not run: ' + e.message.split('\n')[0].slice(0, 200) });
      } finally {
        await stopProcess(server);
      }
    }
    if (planes.length === 1) {
      rows.push({ server: 'rtcedge (native)', notBuilt: true, why: 'not built yet' });
      log('rtcedge (native): not built yet');
    }
    // (c) coturn
    let coturn;
    try {
      coturn = await startCoturn();
      commands.push(`coturn: ${coturn.cmdline}  (${coturn.confText})`);
      for (const load of TURN_LOADS) {
        const r = await runLoad(coturn.pid, COTURN_PORT, load);
        commands.push(`turnutils_uclient ${r.command}`);
        rows.push({ server: 'coturn ' + coturnVersion(), load, ...r });
        log(fmtRow(rows[rows.length - 1]));
      }
    } catch (e) {
      notes.push(`coturn run failed: ${e.message}`);
      log(`coturn run failed: ${e.message}`);
    } finally {
      if (coturn) await stopCoturn(coturn);
    }
  } finally {
    await stopProcess(peer);
  }
  return { rows, notes, commands: [...new Set(commands)] };
}

export function debVersion(pkg) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg]).toString().trim();
  } catch {
    return '?';
  }
}

export function coturnVersion() {
  return debVersion('coturn');
}

const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

export function fmtRow(r) {
  if (r.notBuilt) return `${r.server}: ${r.why}`;
  return (
    `${r.server} m=${r.load.clients} n=${r.load.messages} l=${r.load.bytes} z=${r.load.intervalMs}: ` +
    `sent ${r.sent} recv ${r.recv} loss ${f(r.lostPct, 2)}% ` +
    `transmit ${f(r.transmitS, 2)} s, ${f(r.relayedPerS)} relayed pkt/s, ` +
    `server CPU ${f(r.cpuS, 2)} s (${f(r.cpuTransmitS, 2)} s while transmitting), ${f(r.pktPerCpuS)} pkt/CPU-s` +
    (r.failed ? ` [uclient exit ${r.exit}]` : '')
  );
}

export function turnTable(rows) {
  const head =
    '| server | clients × msgs × bytes, interval | sent | received | loss % | transmit s | relayed pkt/s | server CPU s (whole run) | CPU s (transmit) | relayed pkt per CPU-s |\n' +
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = rows.map((r) =>
    r.notBuilt
      ? `| ${r.server} | ${r.why} | | | | | | | | |`
      : `| ${r.server} | ${r.load.clients} × ${r.load.messages} × ${r.load.bytes}, -z ${r.load.intervalMs} | ${r.sent} | ${r.recv} | ${f(r.lostPct, 2)} | ${f(r.transmitS, 2)} | ${f(r.relayedPerS)} | ${f(r.cpuS, 2)} | ${f(r.cpuTransmitS, 2)} | ${f(r.pktPerCpuS)} |` +
        (r.failed ? ` (uclient exit ${r.exit})` : ''),
  );
  return [head, ...lines].join('\n');
}

/**
 * Replaces (or appends) the "## TURN" section of bench/RESULTS.md with the
 * table, the commands run and the notes; other sections stay as they are.
 */
export function writeTurnResults(res, file = join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md')) {
  const section = [
    '## TURN',
    '',
    `Relayed packets (client→peer and peer→client, 2 per echoed message) per second and per server CPU-second, ${new Date().toISOString().slice(0, 10)}, on loopback.`,
    'Server CPU is utime+stime of the server process from /proc/<pid>/stat (rtcedge runs as `rtcedge serve`, coturn as `turnserver`).',
    '',
    turnTable(res.rows),
    '',
    'Commands:',
    '',
    ...res.commands.map((c) => `- \`${c}\``),
    ...(res.notes.length ? ['', 'Notes:', '', ...res.notes.map((n) => `- ${n}`)] : []),
    '',
  ].join('\n');
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\n';
  const start = old.search(/^## TURN\s*$/m);
  let out;
  if (start < 0) out = old.replace(/\n*$/, '\n\n') + section;
  else {
    const rest = old.slice(start + 1);
    const next = rest.search(/^## /m);
    out = old.slice(0, start) + section + (next < 0 ? '' : '\n' + rest.slice(next));
  }
  writeFileSync(file, out);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await runTurnBench();
  console.log(turnTable(res.rows));
  for (const n of res.notes) console.log('note:', n);
  if (process.argv.includes('--write')) writeTurnResults(res);
}
