import { DEFAULT_SCANNER_USER_AGENTS } from '../../src/security/scanner-filter.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { ConfigError, defaultConfig, loadConfig, parseConfig } from '../../src/config/load.js';
import { sipWorkerCount } from '../../src/config/schema.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeYaml(text: string): string {
  const file = join(dir, 'rtcedge.yaml');
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  test('no path gives every default of the example file', () => {
    const c = loadConfig();
    expect(c).toEqual({
      data_dir: resolve(process.cwd(), 'rtcedge-data'),
      domains: ['example.test'],
      log: { level: 'info', summary_interval: 60, max_buffer_bytes: 4194304 },
      memory: { heap_growing_percent: 30, young_generation_mb: 4 },
      sip: {
        listen: [
          { transport: 'udp', host: '0.0.0.0', port: 5060 },
          { transport: 'tcp', host: '0.0.0.0', port: 5060 },
          { transport: 'tls', host: '0.0.0.0', port: 5061 },
          { transport: 'udp', host: '::', port: 5060 },
          { transport: 'tcp', host: '::', port: 5060 },
          { transport: 'tls', host: '::', port: 5061 },
        ],
        tls: { certificates: [] },
        limits: {
          max_message_bytes: 65535,
          max_headers: 256,
          max_line_bytes: 8192,
          stream_pause_bytes: 262144,
          stream_close_bytes: 4194304,
          stream_stall_ms: 10000,
          udp_receive_buffer_bytes: 4194304,
          max_connections: 10000,
          completed_transactions: 150000,
        },
        overload: {
          lag_ms: 200,
          drop_lag_ms: 1000,
          target_utilization: 0.95,
          max_pending_transactions: 10000,
          max_transactions: 200000,
          max_new_per_s: 0,
          retry_after: 5,
        },
        registrar: { min_expires: 60, max_expires: 86400, default_expires: 3600, max_bindings_per_aor: 10, flow_timer: 120 },
        auth: { nonce_ttl: 300, algorithms: ['MD5'], strict_uri: false, credential_cache_entries: 20_000, nonce_count_entries: 100_000 },
        security: {
          exempt_sources: ['127.0.0.0/8', '::1'],
          source_rate: { requests_per_second: 50, burst: 200, ban_seconds: 60 },
          auth_failures: { per_source: 10, per_user: 20, window_seconds: 60, ban_seconds: 600 },
          scanner_user_agents: [...DEFAULT_SCANNER_USER_AGENTS],
          calls: { max_concurrent_per_user: 10, max_attempts_per_minute: 30, max_call_seconds: 14400 },
        },
        timers: { t1: 500, t2: 4000, t4: 5000 },
        workers: 'auto',
        udp_steering: 'auto',
      },
      turn: {
        enabled: true,
        listen: [
          { transport: 'udp', host: '0.0.0.0', port: 3478 },
          { transport: 'tcp', host: '0.0.0.0', port: 3478 },
        ],
        relay_port_min: 49152,
        relay_port_max: 65535,
        default_lifetime: 600,
        max_lifetime: 3600,
        nonce_ttl: 600,
        allow_loopback_peers: false,
        allowed_peers: [],
        denied_peers: [],
        auth_secrets: [],
        password_algorithms: ['MD5'],
        max_allocations_per_user: 10,
        max_allocations: 1000,
        bandwidth_limit: 0,
        permissions_per_allocation: 1024,
        tcp_connections_per_allocation: 256,
        tcp_pending_per_allocation: 32,
        max_connections: 10000,
        challenge_rate: 20,
        challenge_address_rate: 1000,
        dtls: { max_sessions: 1000, max_handshakes: 100, idle_timeout: 600, psk: [] },
      },
      directory: {
        type: 'none',
        filter: '(uid={user})',
        attributes: { password: ['SIPIdentityPassword'] },
        cache_ttl: 60,
        timeout: 3000,
        retry_after: 30,
      },
      dns: {
        servers: [],
        timeout_ms: 2000,
        tries: 2,
        cache_entries: 10000,
        max_ttl_seconds: 3600,
        naptr_srv_ttl_seconds: 60,
        negative_ttl_seconds: 30,
        failed_target_seconds: 30,
        failed_targets_max: 1000,
        enum_suffixes: ['e164.arpa'],
      },
      federation: { require_tls: true, ca: [], system_ca: true, allow_domains: [], deny_domains: [], wildcard_certificates: false },
      enum: {},
      admin: { enabled: true, listen: { host: '127.0.0.1', port: 9060 } },
      store: {
        type: 'sqlite',
        redis: { url: 'redis://127.0.0.1:6379', sentinels: [], sentinel_name: 'mymaster', key_prefix: 'rtcedge:', command_timeout: 1000, connect_timeout: 3000, retry_after: 5, cache_aors: 10_000 },
      },
      node: {},
    });
    expect(c.sip.advertised_host).toBeUndefined();
    expect(c.turn.realm).toBeUndefined();
    expect(c.turn.relay_address).toBeUndefined();
  });

  test('the example file parses to exactly the defaults', () => {
    const example = resolve(__dirname, '../../config/rtcedge.example.yaml');
    expect(loadConfig(example)).toEqual(defaultConfig());
  });

  test('an empty file gives the defaults', () => {
    expect(loadConfig(writeYaml('# nothing\n'))).toEqual(defaultConfig());
  });

  test('defaultConfig returns a fresh object each time', () => {
    const a = defaultConfig();
    a.sip.listen.push({ transport: 'udp', host: '::', port: 1 });
    expect(defaultConfig().sip.listen).toHaveLength(6);
  });
});

describe('overrides', () => {
  test('given keys replace defaults, the rest stays default', () => {
    const c = loadConfig(
      writeYaml(`
data_dir: /var/lib/rtcedge
domains: [Example.ORG, second.test]
log: { level: debug }
sip:
  listen:
    - { transport: tls, host: 192.0.2.1, port: 5071 }
    - { transport: udp, port: 0 }
  advertised_host: sip.example.org
  tls:
    cert: /etc/c.pem
    key: /etc/k.pem
  registrar: { min_expires: 30 }
  timers: { t1: 100 }
turn:
  enabled: false
  realm: turn.example.org
  relay_address: 198.51.100.7
  allow_loopback_peers: true
`),
    );
    expect(c.data_dir).toBe('/var/lib/rtcedge');
    expect(c.domains).toEqual(['example.org', 'second.test']);
    expect(c.log.level).toBe('debug');
    expect(c.sip.listen).toEqual([
      { transport: 'tls', host: '192.0.2.1', port: 5071 },
      { transport: 'udp', host: '0.0.0.0', port: 0 },
    ]);
    expect(c.sip.advertised_host).toBe('sip.example.org');
    expect(c.sip.tls).toEqual({ cert: '/etc/c.pem', key: '/etc/k.pem', certificates: [] });
    expect(c.sip.registrar).toEqual({ min_expires: 30, max_expires: 86400, default_expires: 3600, max_bindings_per_aor: 10, flow_timer: 120 });
    expect(c.sip.timers).toEqual({ t1: 100, t2: 4000, t4: 5000 });
    expect(c.turn.enabled).toBe(false);
    expect(c.turn.realm).toBe('turn.example.org');
    expect(c.turn.relay_address).toBe('198.51.100.7');
    expect(c.turn.allow_loopback_peers).toBe(true);
    expect(c.turn.listen).toHaveLength(2);
  });

  test('relative data_dir is resolved against the working directory, not the file', () => {
    const c = loadConfig(writeYaml('data_dir: some/where\n'));
    expect(c.data_dir).toBe(resolve(process.cwd(), 'some/where'));
  });

  test('sip.tls with only comments under it (null) is accepted', () => {
    const c = loadConfig(writeYaml('sip:\n  tls:\n    # cert: /x\n    # key: /y\n'));
    expect(c.sip.tls).toEqual({ certificates: [] });
  });
});

describe('errors', () => {
  test('unknown key names the key path and the file', () => {
    const file = writeYaml('sip:\n  listne: []\n');
    const err = errorOf(() => loadConfig(file));
    expect(err.message).toBe(`config ${file}: unknown key "sip.listne"`);
    expect(err.file).toBe(file);
  });

  test('unknown key inside a listener entry', () => {
    const file = writeYaml('turn:\n  listen:\n    - { transport: udp, port: 3478, hots: x }\n');
    expect(errorOf(() => loadConfig(file)).message).toBe(`config ${file}: unknown key "turn.listen[0].hots"`);
  });

  test('bad port value names key, expectation and the value', () => {
    const file = writeYaml('sip:\n  listen:\n    - { transport: udp, host: 0.0.0.0, port: abc }\n');
    expect(errorOf(() => loadConfig(file)).message).toBe(
      `config ${file}: sip.listen[0].port: expected a number 0-65535, got "abc"`,
    );
  });

  test('port out of range', () => {
    const file = writeYaml('sip:\n  listen:\n    - { transport: tcp, port: 70000 }\n');
    expect(errorOf(() => loadConfig(file)).message).toBe(
      `config ${file}: sip.listen[0].port: expected a number 0-65535, got 70000`,
    );
  });

  test('sip.workers: auto or 1-64, named with the value', () => {
    for (const [value, got] of [['0', '0'], ['65', '65'], ['two', '"two"'], ['1.5', '1.5']]) {
      const file = writeYaml(`sip:\n  workers: ${value}\n`);
      expect(errorOf(() => loadConfig(file)).message).toBe(`config ${file}: sip.workers: expected 'auto' or a whole number 1-64, got ${got}`);
    }
    expect(loadConfig(writeYaml('sip:\n  workers: 3\n')).sip.workers).toBe(3);
    // Several workers on a Redis store too (each worker reads bindings through Redis).
    expect(parseConfig({ sip: { workers: 4 }, store: { type: 'redis' }, node: { uri: 'sip:10.0.0.1' } }, '/x.yaml').sip.workers).toBe(4);
    expect([sipWorkerCount('auto', 2), sipWorkerCount('auto', 128), sipWorkerCount(5, 2)]).toEqual([2, 64, 5]);
  });

  test('bad transport for TURN (ws is SIP only)', () => {
    const file = writeYaml('turn:\n  listen:\n    - { transport: ws, port: 5349 }\n');
    expect(errorOf(() => loadConfig(file)).message).toBe(
      `config ${file}: turn.listen[0].transport: expected one of udp, tcp, tls, dtls, got "ws"`,
    );
  });

  test('several problems give one line each', () => {
    const file = writeYaml('log: { level: loud }\nturn: { relay_address: nope }\nfoo: 1\n');
    const err = errorOf(() => loadConfig(file));
    expect(err.problems.sort()).toEqual([
      'log.level: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"',
      'turn.relay_address: expected an IP address, got "nope"',
      'unknown key "foo"',
    ]);
    expect(err.message.split('\n')).toHaveLength(3);
  });

  test('inconsistent values', () => {
    expect(errorOf(() => parseConfig({ sip: { registrar: { min_expires: 100, max_expires: 50 } } }, '/x.yaml')).message).toBe(
      'config /x.yaml: sip.registrar.min_expires: must not exceed max_expires (50)',
    );
    expect(errorOf(() => parseConfig({ turn: { relay_port_min: 60000, relay_port_max: 50000 } }, '/x.yaml')).message).toBe(
      'config /x.yaml: turn.relay_port_min: must not exceed relay_port_max (50000)',
    );
    expect(errorOf(() => parseConfig({ sip: { tls: { cert: '/c.pem' } } }, '/x.yaml')).message).toBe(
      'config /x.yaml: sip.tls.key: cert and key must be given together',
    );
    expect(errorOf(() => parseConfig({ domains: [] }, '/x.yaml')).message).toBe(
      'config /x.yaml: domains: expected at least one domain, got an empty list',
    );
    expect(errorOf(() => parseConfig({ turn: { bandwidth_limit: 64000, data_plane: 'native' } }, '/x.yaml')).message).toMatch(
      /^config \/x\.yaml: turn\.bandwidth_limit: is enforced by the typescript data plane only/,
    );
  });

  test('sip.udp_send: native or dgram, unset by default (native when the addon loads); another value names the key', () => {
    expect(parseConfig({}, '/x.yaml').sip.udp_send).toBeUndefined();
    expect(parseConfig({ sip: { udp_send: 'dgram' } }, '/x.yaml').sip.udp_send).toBe('dgram');
    expect(parseConfig({ sip: { udp_send: 'native' } }, '/x.yaml').sip.udp_send).toBe('native');
    expect(errorOf(() => parseConfig({ sip: { udp_send: 'fast' } }, '/x.yaml')).message).toBe('config /x.yaml: sip.udp_send: expected native or dgram, got "fast"');
  });

  test('sip.udp_steering: auto by default, or off; another value names the key', () => {
    expect(parseConfig({}, '/x.yaml').sip.udp_steering).toBe('auto');
    expect(parseConfig({ sip: { udp_steering: 'off' } }, '/x.yaml').sip.udp_steering).toBe('off');
    expect(errorOf(() => parseConfig({ sip: { udp_steering: 'ebpf' } }, '/x.yaml')).message).toBe('config /x.yaml: sip.udp_steering: expected auto or off, got "ebpf"');
  });

  test('store: redis needs node.uri; bad Redis URL, sentinel address and store type name their key', () => {
    expect(errorOf(() => parseConfig({ store: { type: 'redis' } }, '/x.yaml')).message).toBe(
      'config /x.yaml: node.uri: required when store.type is redis (the URI other nodes reach this one at)',
    );
    expect(errorOf(() => parseConfig({ store: { type: 'mysql' } }, '/x.yaml')).message).toBe('config /x.yaml: store.type: expected one of sqlite, redis, got "mysql"');
    expect(errorOf(() => parseConfig({ store: { redis: { url: 'http://x' } } }, '/x.yaml')).message).toBe(
      'config /x.yaml: store.redis.url: expected a redis://, rediss:// or unix:/path URL, got "http://x"',
    );
    expect(errorOf(() => parseConfig({ store: { redis: { sentinels: ['host'] } } }, '/x.yaml')).message).toBe(
      'config /x.yaml: store.redis.sentinels[0]: expected host:port, got "host"',
    );
    const ok = parseConfig({ store: { type: 'redis', redis: { sentinels: ['127.0.0.1:26379'] } }, node: { uri: 'sip:127.0.0.2:5061;transport=tls' } }, '/x.yaml');
    expect(ok.node.uri).toBe('sip:127.0.0.2:5061;transport=tls');
  });

  test('missing required listener key', () => {
    expect(errorOf(() => parseConfig({ sip: { listen: [{ transport: 'udp' }] } }, '/x.yaml')).message).toBe(
      'config /x.yaml: sip.listen[0].port: missing (expected a number 0-65535)',
    );
  });

  test('YAML syntax error names the file and the line', () => {
    const file = writeYaml('domains: [a.test]\nsip:\n  listen: [\n  foo: : bar\n');
    const err = errorOf(() => loadConfig(file));
    expect(err.message.startsWith(`config ${file}: YAML syntax error at line 4, column 3: `)).toBe(true);
  });

  test('duplicate key is a YAML error', () => {
    const file = writeYaml('log: { level: info }\nlog: { level: debug }\n');
    expect(errorOf(() => loadConfig(file)).message).toMatch(new RegExp(`^config ${file}: YAML syntax error at line 2, column 1: `));
  });

  test('top level must be a mapping', () => {
    const file = writeYaml('- a\n- b\n');
    expect(errorOf(() => loadConfig(file)).message).toBe(
      `config ${file}: expected a mapping of keys at the top level, got a list`,
    );
  });

  test('missing file is named', () => {
    const file = join(dir, 'nope.yaml');
    expect(errorOf(() => loadConfig(file)).message).toBe(`config ${file}: file not found`);
  });
});

describe('turn.dtls', () => {
  test('a dtls listener and PSK identities parse; a bad PSK key names the key', () => {
    const ok = writeYaml('turn:\n  listen:\n    - { transport: dtls, port: 5349 }\n  dtls:\n    idle_timeout: 120\n    psk:\n      - { identity: gw, key: 00ff }\n');
    const c = loadConfig(ok);
    expect(c.turn.listen).toEqual([{ transport: 'dtls', host: '0.0.0.0', port: 5349 }]);
    expect(c.turn.dtls).toEqual({ max_sessions: 1000, max_handshakes: 100, idle_timeout: 120, psk: [{ identity: 'gw', key: '00ff' }] });
    const bad = writeYaml('turn:\n  dtls:\n    psk:\n      - { identity: gw, key: xyz }\n');
    expect(errorOf(() => loadConfig(bad)).message).toBe(`config ${bad}: turn.dtls.psk[0].key: expected a hex key of 1-64 bytes, got "xyz"`);
  });
});
