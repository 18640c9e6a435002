/**
 * Kamailio (Debian kamailio + kamailio-tls-modules) as a peer SIP domain:
 * a registrar and proxy for one domain on one loopback address, UDP/TCP
 * 5060 and TLS 5061 with mutual TLS (its certificate and a CA list, peers
 * must present a verified certificate), requests for other domains relayed
 * over TLS to a fixed next hop. Its own temp dir (config, tls.cfg, runtime
 * dir); started in the foreground with logs on stderr, stopped by PID.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitForTcpPort } from './ports.js';
import { runCommand, spawnProcess, type ManagedProcess } from './process.js';

/** Options of startKamailio. */
export interface KamailioOptions {
  dir: string;
  /** The domain it serves (e.g. `gamma.test`). */
  domain: string;
  /** Loopback address it listens on (UDP/TCP 5060, TLS 5061). */
  address: string;
  /** PEM certificate and key naming `domain`, and the CA file peers' certificates chain to. */
  cert: string;
  key: string;
  ca: string;
  /** Other domains it relays to: domain → `sip:ADDRESS:PORT;transport=tls` next hop, with SNI = that domain. */
  peers: Record<string, string>;
}

/** A running Kamailio. */
export interface Kamailio {
  readonly pid: number;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

function config(o: KamailioOptions, tlsCfg: string): string {
  const relays = Object.entries(o.peers)
    .map(([domain, hop]) => `  if ($rd == "${domain}") { $du = "${hop}"; if (!t_relay()) sl_reply_error(); exit; }`)
    .join('\n');
  return `#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
listen=udp:${o.address}:5060
listen=tcp:${o.address}:5060
listen=tls:${o.address}:5061
alias="${o.domain}"
enable_tls=yes
auto_aliases=no

loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "tmx.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "xlog.so"

modparam("tls", "config", "${tlsCfg}")
modparam("usrloc", "db_mode", 0)

request_route {
  xlog("L_INFO", "request $rm $ru from $si:$sp over $pr\\n");
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
    sl_send_reply("404", "Not here");
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  t_check_trans();
  if (is_method("REGISTER")) { save("location"); exit; }
  loose_route();
  record_route();
  if ($rd == "${o.domain}" || $rd == "${o.address}") {
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_relay();
    exit;
  }
${relays}
  sl_send_reply("403", "Relaying denied");
}
`;
}

function tlsConfig(o: KamailioOptions, sni: string | undefined): string {
  const common = ['method = TLSv1.2+', 'verify_certificate = yes', 'require_certificate = yes', `certificate = ${o.cert}`, `private_key = ${o.key}`, `ca_list = ${o.ca}`];
  return ['[server:default]', ...common, '', '[client:default]', ...common, ...(sni ? [`server_name = ${sni}`] : []), ''].join('\n');
}

/** Writes kamailio.cfg and tls.cfg under `dir`, checks the config (`kamailio -c`), starts it and waits until it listens (bounded, 20 s). */
export async function startKamailio(o: KamailioOptions): Promise<Kamailio> {
  const cfg = join(o.dir, 'kamailio.cfg');
  const tlsCfg = join(o.dir, 'tls.cfg');
  writeFileSync(cfg, config(o, tlsCfg));
  writeFileSync(tlsCfg, tlsConfig(o, Object.keys(o.peers)[0]));
  const check = await runCommand('kamailio', ['-c', '-f', cfg], { cwd: o.dir, timeoutMs: 20_000 });
  if (check.code !== 0) throw new Error(`kamailio -c failed (exit ${check.code}):\n${check.output}`);
  const proc = spawnProcess('kamailio', ['-f', cfg, '-DD', '-E', '-Y', o.dir, '-P', join(o.dir, 'kamailio.pid'), '-m', '64', '-M', '8'], { cwd: o.dir });
  await waitForTcpPort(o.address, 5061, 20_000);
  return {
    pid: proc.pid,
    process: proc,
    stop: () => proc.stop(3000).then(() => undefined),
  };
}
