/**
 * Abuse resistance against the attacks a public SIP server sees (Debian's
 * sipvicious 0.3.3: svwar, svcrack, svmap), on loopback with nothing exempt:
 * (a) svwar (REGISTER, OPTIONS, INVITE; --force past its initial check) finds
 *     no extension in a list holding a registered user, an unregistered user
 *     and unknown names;
 * (b) svcrack against alice is banned after `per_source` failures, long before
 *     its list (the real password last) is exhausted, and the ban shows in the
 *     log and in `rtcedge bans`; the real alice, registering from 127.0.0.2,
 *     keeps registering, while a new address cannot even with the right
 *     password (the user is locked for addresses it never used);
 * (c) a flood of OPTIONS from 127.0.0.3 over the per-source rate is banned and
 *     dropped without responses;
 * (d) with the default scanner list, svmap's requests ("friendly-scanner") get
 *     no response at all.
 *
 * Ports: rtcedge 29900 (UDP) and 29910 (second instance, default scanner list);
 * sipvicious local ports 29920-29929; Node UDP clients use ephemeral ports.
 */
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { assertPortsFree } from './harness/ports.js';
import { runCommand, stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const PORT = 29900;
const PORT_DEFAULTS = 29910;
const ALICE_PW = 'alice-real-pw-7';
const PER_SOURCE = 5;
/** The per-source token bucket of the first server: sustained requests per second and burst. */
const SOURCE_RATE = 100;
const SOURCE_BURST = 300;

/** sipvicious tool: Debian names them svwar/svcrack/svmap; newer packages sipvicious_svwar etc. */
async function sipvicious(tool: 'svwar' | 'svcrack' | 'svmap', args: string[], home: string, timeoutMs: number) {
  const which = await runCommand('sh', ['-c', `command -v sipvicious_${tool} || command -v ${tool}`], { timeoutMs: 5000 });
  const bin = which.stdout.trim().split('\n')[0];
  if (!bin) throw new Error(`sipvicious ${tool} not installed (Debian package sipvicious)`);
  return runCommand('timeout', ['-k', '2', String(Math.ceil(timeoutMs / 1000)), bin, ...args], { timeoutMs: timeoutMs + 5000, env: { HOME: home } });
}

/** A digest REGISTER client on a UDP socket bound to `address` (MD5, qop=auth). */
class Registrant {
  private constructor(
    private readonly socket: dgram.Socket,
    readonly address: string,
    readonly port: number,
  ) {}

  static async open(address: string): Promise<Registrant> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, address, () => r()));
    return new Registrant(socket, address, socket.address().port);
  }

  close(): void {
    this.socket.close();
  }

  /** Send one message and wait for the first reply (its text), or undefined after timeoutMs. */
  private exchange(msg: string, serverPort: number, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.off('message', onMsg);
        resolve(undefined);
      }, timeoutMs);
      const onMsg = (data: Buffer) => {
        clearTimeout(timer);
        this.socket.off('message', onMsg);
        resolve(data.toString());
      };
      this.socket.on('message', onMsg);
      this.socket.send(msg, serverPort, '127.0.0.1');
    });
  }

  /**
   * Send `method` for `user@127.0.0.1` (Request-URI and To) with From `user@fromHost`;
   * returns the first final status line ('' for none within 2 s).
   */
  async request(method: string, user: string, fromHost: string, serverPort: number): Promise<string> {
    const callId = randomBytes(8).toString('hex');
    const target = method === 'REGISTER' ? `sip:127.0.0.1:${serverPort}` : `sip:${user}@127.0.0.1:${serverPort}`;
    const msg =
      `${method} ${target} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.address}:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:${method === 'REGISTER' ? user : 'probe'}@${fromHost}>;tag=${callId.slice(0, 6)}\r\nTo: <sip:${user}@127.0.0.1>\r\n` +
      `Call-ID: ${callId}\r\nCSeq: 1 ${method}\r\nContact: <sip:probe@${this.address}:${this.port}>\r\nContent-Length: 0\r\n\r\n`;
    const deadline = Date.now() + 2000;
    let reply = await this.exchange(msg, serverPort, 2000);
    while (reply !== undefined && /^SIP\/2\.0 1\d\d/.test(reply) && Date.now() < deadline) {
      reply = await this.next(deadline - Date.now());
    }
    return reply?.split('\r\n')[0] ?? '';
  }

  /** The next datagram's text, or undefined after timeoutMs. */
  private next(timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.off('message', onMsg);
        resolve(undefined);
      }, timeoutMs);
      const onMsg = (data: Buffer) => {
        clearTimeout(timer);
        this.socket.off('message', onMsg);
        resolve(data.toString());
      };
      this.socket.on('message', onMsg);
    });
  }

  /** REGISTER user with password; returns the final status (0 for no response). */
  async register(user: string, password: string, serverPort: number): Promise<number> {
    const callId = randomBytes(8).toString('hex');
    const uri = `sip:127.0.0.1:${serverPort}`;
    const build = (cseq: number, auth?: string) =>
      `REGISTER ${uri} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.address}:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport\r\n` +
      `Max-Forwards: 70\r\nFrom: <sip:${user}@example.test>;tag=${callId.slice(0, 6)}\r\nTo: <sip:${user}@example.test>\r\n` +
      `Call-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\nContact: <sip:${user}@${this.address}:${this.port}>\r\nExpires: 120\r\n` +
      (auth ? `Authorization: ${auth}\r\n` : '') +
      `Content-Length: 0\r\n\r\n`;
    const first = await this.exchange(build(1), serverPort, 2000);
    if (!first) return 0;
    const status = Number(first.slice(8, 11));
    if (status !== 401) return status;
    const challenge = /WWW-Authenticate: Digest (.*)\r\n/i.exec(first)![1];
    const realm = /realm="([^"]+)"/.exec(challenge)![1];
    const nonce = /nonce="([^"]+)"/.exec(challenge)![1];
    const opaque = /opaque="([^"]+)"/.exec(challenge)?.[1];
    const md5 = (s: string) => createHash('md5').update(s).digest('hex');
    const cnonce = randomBytes(4).toString('hex');
    const response = md5(`${md5(`${user}:${realm}:${password}`)}:${nonce}:00000001:${cnonce}:auth:${md5(`REGISTER:${uri}`)}`);
    const auth =
      `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", ` +
      `algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"` + (opaque ? `, opaque="${opaque}"` : '');
    const second = await this.exchange(build(2, auth), serverPort, 2000);
    return second ? Number(second.slice(8, 11)) : 0;
  }
}

describeWithPeers(['svwar|sipvicious_svwar', 'svcrack|sipvicious_svcrack', 'svmap|sipvicious_svmap'])('abuse: enumeration, password guessing, floods and scanners', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let defaults: Rtcedge | undefined;
  let realAlice: Registrant | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [PORT, PORT_DEFAULTS, ...Array.from({ length: 10 }, (_, i) => 29920 + i)]);
    dir = makeTempDir('abuse');
    const users = [
      { aor: 'alice@example.test', password: ALICE_PW },
      { aor: 'bob@example.test', password: 'bob-pw-2' },
      { aor: '1001@example.test', password: 'pw-1001' },
    ];
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: PORT },
      users,
      config: {
        sip: {
          security: {
            exempt_sources: [],
            // sipvicious always says "friendly-scanner": off here, so (a) and (b) test the answers themselves.
            scanner_user_agents: [],
            source_rate: { requests_per_second: SOURCE_RATE, burst: SOURCE_BURST, ban_seconds: 60 },
            auth_failures: { per_source: PER_SOURCE, per_user: PER_SOURCE, window_seconds: 60, ban_seconds: 600 },
          },
        },
      },
    });
    defaults = await startRtcedge({ dir: join(dir, 'defaults'), ports: { udp: PORT_DEFAULTS }, users });
    realAlice = await Registrant.open('127.0.0.2');
    expect(await realAlice.register('alice', ALICE_PW, PORT)).toBe(200);
  });

  afterAll(async () => {
    realAlice?.close();
    await Promise.all([server?.stop(), defaults?.stop()]);
    await stopAllStarted();
    if (dir) removeTempDir(dir);
  });

  it('(a) svwar finds no extension with REGISTER, OPTIONS or INVITE', async () => {
    const list = join(dir, 'users.txt');
    writeFileSync(list, ['alice', 'bob', '1001', 'nobody', '100', '200', 'admin', 'carol', 'test'].join('\n') + '\n');
    expect(server!.bindings('sip:alice@example.test')).toHaveLength(1);
    const sent0 = server!.sipLog({ direction: 'send' }).length;
    let localPort = 29920;
    for (const method of ['REGISTER', 'OPTIONS', 'INVITE']) {
      const home = makeTempDir('svwar-home');
      const r = await sipvicious(
        'svwar',
        ['-p', String(PORT), '-P', String(localPort++), '-b', '127.0.0.1', '-x', '127.0.0.1', '-m', method, '-d', list, '--force', '--maximumtime=3', '127.0.0.1'],
        home,
        25_000,
      );
      removeTempDir(home);
      expect(r.output, `svwar -m ${method}`).toMatch(/found nothing/);
      expect(r.output).not.toMatch(/\| (alice|bob|1001) /);
    }
    // It got answers, and stopped because the answer for a real name equals the one for its random name.
    const answers = server!.sipLog({ direction: 'send' }).slice(sent0).filter((e) => e.remote.startsWith('127.0.0.1:2992'));
    expect(answers.length).toBeGreaterThanOrEqual(6);
    expect(new Set(answers.filter((e) => e.status !== undefined && e.status >= 200).map((e) => e.startLine))).toEqual(
      new Set(['SIP/2.0 401 Unauthorized', 'SIP/2.0 407 Proxy Authentication Required']),
    );
    expect(server!.logs.some((l) => l.msg === 'source banned')).toBe(false);
  });

  it('(a2) every name gets the same final answer: challenged when From is local, 404 from other domains', async () => {
    const probe = await Registrant.open('127.0.0.1');
    try {
      const names = ['alice', 'bob', '1001', 'nobody', 'admin'];
      for (const method of ['REGISTER', 'OPTIONS', 'INVITE']) {
        const lines = new Set<string>();
        for (const n of names) lines.add(await probe.request(method, n, '127.0.0.1', PORT));
        expect([...lines], `${method} with a local From`).toEqual([method === 'REGISTER' ? 'SIP/2.0 401 Unauthorized' : 'SIP/2.0 407 Proxy Authentication Required']);
      }
      // Senders of other domains: an unknown user and a user without bindings (bob, 1001) alike.
      for (const method of ['OPTIONS', 'INVITE', 'MESSAGE']) {
        const lines = new Set<string>();
        for (const n of ['bob', '1001', 'nobody', 'admin']) lines.add(await probe.request(method, n, 'elsewhere.test', PORT));
        expect([...lines], `${method} from another domain`).toEqual(['SIP/2.0 404 Not Found']);
      }
    } finally {
      probe.close();
    }
  });

  it('(b) svcrack is banned before its list is exhausted; the real user keeps registering from 127.0.0.2', async () => {
    const pw = join(dir, 'passwords.txt');
    const guesses = Array.from({ length: 60 }, (_, i) => `guess${i}`);
    writeFileSync(pw, [...guesses, ALICE_PW].join('\n') + '\n');
    const home = makeTempDir('svcrack-home');
    const r = await sipvicious(
      'svcrack',
      ['-p', String(PORT), '-P', '29925', '-b', '127.0.0.1', '-x', '127.0.0.1', '-u', 'alice', '-d', pw, '--maximumtime=3', '127.0.0.1'],
      home,
      40_000,
    );
    removeTempDir(home);
    expect(r.output).not.toContain(ALICE_PW);

    const ban = server!.logs.find((l) => l.msg === 'source banned' && l.address === '127.0.0.1');
    expect(ban).toMatchObject({ reason: 'auth-failures', level: 40 });
    // Answered credentials before the ban: at most per_source 403s, far from the 61 in the list.
    const forbidden = server!.sipLog({ direction: 'send', status: 403 }).filter((e) => e.remote.startsWith('127.0.0.1:'));
    expect(forbidden.length).toBe(PER_SOURCE);
    const tried = server!.sipLog({ direction: 'recv', method: 'REGISTER' }).filter((e) => e.remote.startsWith('127.0.0.1:') && /^Authorization:/im.test(e.message));
    expect(tried.length).toBeLessThan(guesses.length);
    expect(server!.logs.some((l) => l.msg === 'user locked' && l.user === 'alice')).toBe(true);

    // The real alice is unaffected; a new address is refused even with the right password while alice is locked.
    expect(await realAlice!.register('alice', ALICE_PW, PORT)).toBe(200);
    const stranger = await Registrant.open('127.0.0.4');
    try {
      expect(await stranger.register('alice', ALICE_PW, PORT)).toBe(403);
      expect(await stranger.register('bob', 'bob-pw-2', PORT)).toBe(200);
    } finally {
      stranger.close();
    }

    // The banned source gets nothing at all now, even for a plain OPTIONS.
    const probe = await Registrant.open('127.0.0.1');
    try {
      expect(await probe.register('bob', 'bob-pw-2', PORT)).toBe(0);
    } finally {
      probe.close();
    }

    // `rtcedge bans` lists it (data_dir/bans.json, written within 500 ms of the ban).
    await new Promise((res) => setTimeout(res, 700));
    const cli = await server!.cli(['bans']);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/^127\.0\.0\.1\tauth-failures\t\d+s\tuntil /m);
  });

  it('(c) an OPTIONS flood over the per-source rate is banned and dropped', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.3', () => r()));
    let replies = 0;
    sock.on('message', () => replies++);
    const port = sock.address().port;
    // Requests at about 1000/s until the server bans the source: a request per millisecond since the last burst, in
    // bursts of 10 to 100 (so the kernel's socket buffer drops none). A flood of a fixed size paced by timers could
    // stay under the rate when a busy machine stretches the pauses.
    const banned = () => server!.logs.some((l) => l.msg === 'source banned' && l.address === '127.0.0.3');
    let sent = 0;
    let lastMs = Date.now();
    while (sent < 3000 && !banned()) {
      await new Promise((res) => setTimeout(res, 10));
      const burst = Math.min(100, Math.max(10, Date.now() - lastMs));
      lastMs = Date.now();
      for (let k = 0; k < burst; k++, sent++) {
        sock.send(
          `OPTIONS sip:127.0.0.1:${PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:${port};branch=z9hG4bKflood${sent};rport\r\nMax-Forwards: 70\r\n` +
            `From: <sip:flood@elsewhere.test>;tag=f\r\nTo: <sip:127.0.0.1:${PORT}>\r\nCall-ID: flood-${sent}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
          PORT,
          '127.0.0.1',
        );
      }
    }
    // The line reaches the harness a moment after the ban, more so on a busy machine.
    const ban = await server!.waitForLog((l) => l.msg === 'source banned' && l.address === '127.0.0.3', 5000).catch(() => undefined);
    expect(ban).toMatchObject({ reason: 'request-rate' });
    // The server logs each message as received before its source gate, and the ban right after the message that
    // found the bucket empty: the flood's messages before that one were admitted.
    const flood = server!.logs.slice(0, server!.logs.indexOf(ban!)).filter((l) => l.msg === 'sip recv' && String(l.callId).startsWith('flood-'));
    const admitted = flood.length - 1;
    // The token bucket admits its burst, plus what it refilled between the flood's first message and the ban, by
    // the server's clock (pino `time`, ms): about 335 at 1000/s, more when a busy machine slows the sender (the
    // server sees the flood spread over a longer time), never more than this.
    const refilledS = (Number(ban!.time) - Number(flood[0]!.time)) / 1000;
    expect(admitted).toBeGreaterThanOrEqual(SOURCE_BURST);
    expect(admitted).toBeLessThanOrEqual(SOURCE_BURST + Math.floor(SOURCE_RATE * refilledS));
    expect(admitted).toBeLessThan(sent);
    // Every admitted request is answered, the rest dropped: the answers on the wire (up to 10 datagrams may be lost
    // at this socket while the test process is busy sending).
    const deadline = Date.now() + 5000;
    while (replies < admitted && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 200));
    sock.close();
    expect(replies).toBeGreaterThanOrEqual(admitted - 10);
    expect(replies).toBeLessThanOrEqual(admitted);
  });

  it('(d) with the default scanner list, svmap gets no response', async () => {
    const home = makeTempDir('svmap-home');
    const recv0 = defaults!.sipLog({ direction: 'recv' }).length;
    const r = await sipvicious('svmap', ['-p', String(PORT_DEFAULTS), '-P', '29927', '-b', '127.0.0.1', '-x', '127.0.0.1', '127.0.0.1'], home, 20_000);
    removeTempDir(home);
    expect(r.output).not.toMatch(/rtcedge|\| 127\.0\.0\.1:29910/);
    const seen = defaults!.sipLog({ direction: 'recv' }).slice(recv0);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((e) => /User-Agent: friendly-scanner/i.test(e.message))).toBe(true);
    expect(defaults!.sipLog({ direction: 'send' }).filter((e) => e.remote.startsWith('127.0.0.1:29927'))).toEqual([]);
  });
});
