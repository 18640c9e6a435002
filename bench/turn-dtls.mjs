// TURN over DTLS benchmark: the same turnutils_uclient -S load (DTLS 1.2,
// ChannelData, echoed by a turnutils_peer on loopback) against rtcedge's dtls
// listener and coturn's DTLS listener, back to back in one run. Reports
// relayed packets per second, loss, server CPU seconds and packets per
// CPU-second. `node bench/turn-dtls.mjs --write` replaces the "## TURN over
// DTLS" section of bench/RESULTS.md; `npm run bench` runs it too.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stopProcess, tempDir } from './lib.mjs';
import { startRtcedge } from './rtcedge.mjs';
import { coturnVersion, fmtRow, runLoad, startCoturn, startPeer, stopCoturn, turnTable } from './turn.mjs';

const RTCEDGE_SIP = 28061;
const RTCEDGE_TURN = 28477;
const RTCEDGE_DTLS = 28479;
const COTURN_DTLS = 28579;

/** Load shapes (see TURN_LOADS in turn.mjs); every client does a DTLS handshake first. */
export const DTLS_LOADS = [
  { clients: 10, messages: 2000, bytes: 100, intervalMs: 1 },
  { clients: 10, messages: 2000, bytes: 100, intervalMs: 0 },
];

/** Whether this build has the DTLS addon. */
export function dtlsAddonBuilt() {
  return existsSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'build', 'Release', 'rtcedge_dtls.node'));
}

/** Runs every DTLS load against rtcedge, then coturn; returns rows for turnTable. */
export async function runDtlsBench(log = console.log) {
  const rows = [];
  const notes = [];
  const commands = [];
  const peer = await startPeer();
  try {
    if (!dtlsAddonBuilt()) rows.push({ server: 'rtcedge (DTLS)', notBuilt: true, why: 'DTLS addon not built' });
    else {
      let server;
      try {
        server = await startRtcedge({
          sipPort: RTCEDGE_SIP,
          turnPort: RTCEDGE_TURN,
          dtlsPort: RTCEDGE_DTLS,
          relayPorts: [28600, 28699],
          users: [['alice', 'alicepw']],
        });
        commands.push(`rtcedge: ${server.cmdline}  (turn.listen udp 127.0.0.1:${RTCEDGE_TURN} and dtls 127.0.0.1:${RTCEDGE_DTLS}, generated certificate, relay 127.0.0.1:28600-28699)`);
        for (const load of DTLS_LOADS) {
          const r = await runLoad(server.pid, RTCEDGE_DTLS, load, ['-S']);
          commands.push(`turnutils_uclient ${r.command}`);
          rows.push({ server: 'rtcedge (DTLS)', load, ...r });
          log(fmtRow(rows.at(-1)));
        }
      } catch (e) {
        notes.push(`rtcedge DTLS run failed: ${e.message}`);
        log(`rtcedge DTLS run failed: ${e.message}`);
      } finally {
        await stopProcess(server);
      }
    }
    let coturn;
    try {
      const dir = tempDir('coturn-dtls');
      const cert = join(dir, 'cert.pem');
      const pkey = join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pkey, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      coturn = await startCoturn([`tls-listening-port=${COTURN_DTLS}`, `cert=${cert}`, `pkey=${pkey}`, 'no-tls']);
      commands.push(`coturn: ${coturn.cmdline}  (${coturn.confText})`);
      for (const load of DTLS_LOADS) {
        const r = await runLoad(coturn.pid, COTURN_DTLS, load, ['-S']);
        commands.push(`turnutils_uclient ${r.command}`);
        rows.push({ server: `coturn ${coturnVersion()} (DTLS)`, load, ...r });
        log(fmtRow(rows.at(-1)));
      }
    } catch (e) {
      notes.push(`coturn DTLS run failed: ${e.message}`);
      log(`coturn DTLS run failed: ${e.message}`);
    } finally {
      if (coturn) await stopCoturn(coturn);
    }
  } finally {
    await stopProcess(peer);
  }
  return { rows, notes, commands: [...new Set(commands)] };
}

/** The "## TURN over DTLS" section of RESULTS.md for `res`. */
export function dtlsSection(res) {
  return [
    '## TURN over DTLS (turnutils_uclient -S, ChannelData, no RTCP)',
    '',
    `Run ${new Date().toISOString()}, rtcedge then coturn back to back, same load generator and peer as the UDP table.`,
    'Every client first does a DTLS 1.2 handshake (cookie exchange, certificate) outside the timed transmit phase;',
    "the whole-run CPU includes the handshakes. rtcedge's DTLS engine is the native addon (OpenSSL through a datagram BIO);",
    'decrypted datagrams go through the TypeScript control plane, relay sockets are the native data plane.',
    'As in the UDP table, a run with loss waits ~10 s for missing echoes: read its loss and packets per CPU-second, not its rate.',
    '',
    turnTable(res.rows),
    '',
    'Commands:',
    '',
    '```',
    ...res.commands,
    '```',
    ...(res.notes.length ? ['', 'Notes:', '', ...res.notes.map((n) => `- ${n.replaceAll('\n', ' ')}`)] : []),
    '',
  ].join('\n');
}

/** Replaces (or appends) the "## TURN over DTLS" section of `file`; other sections stay as they are. */
export function writeDtlsResults(res, file = join(dirname(fileURLToPath(import.meta.url)), 'RESULTS.md')) {
  const section = dtlsSection(res);
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# rtcedge benchmark results\n\n';
  const start = old.search(/^## TURN over DTLS/m);
  let out;
  if (start < 0) {
    // Right after the UDP TURN section when there is one, else at the end.
    const sip = old.search(/^## SIP/m);
    out = sip < 0 ? old.replace(/\n*$/, '\n\n') + section : old.slice(0, sip) + section + '\n' + old.slice(sip);
  } else {
    const rest = old.slice(start + 1);
    const next = rest.search(/^## /m);
    out = old.slice(0, start) + section + (next < 0 ? '' : '\n' + rest.slice(next + 0));
  }
  writeFileSync(file, out);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const res = await runDtlsBench();
  console.log(turnTable(res.rows));
  for (const n of res.notes) console.log('note:', n);
  if (process.argv.includes('--write')) writeDtlsResults(res);
}
