#!/usr/bin/env node
/**
 * The `rtcedge` command: `serve`; `user add|passwd|del|list|show|import`; `reg list|del`;
 * `bans`; `turn credentials`; `config check`; `reload`; `backup`; `restore`; `check`.
 * User commands write the store directly; `reg`, `reload` go through the
 * running server's admin API (admin-client.ts).
 *
 * Exit status: 0 success, 1 a command that failed (one line on stderr: a bad
 * path named by the configuration, an empty or damaged store, an unexpected
 * error without its stack unless RTCEDGE_DEBUG is set), 2 a configuration
 * error (message names the file and the key).
 * `check` exits 0-3 as a monitoring plugin.
 */
// First: holds V8's young generation small while the modules below load (see the module).
import './hold-young-generation.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { StoreError } from '../store/errors.js';
import { CliError } from './errors.js';
import { type PasswordOptions, readPassword } from './password.js';
import { serve } from './serve.js';
import { addUser, changePassword, deleteUser, formatUser, listUsers, parseUserSpec, showUser, userRecords } from './user-commands.js';
import { importUsers } from './import-users.js';
import { adminRequest } from './admin-client.js';
import { backup, BackupError, restore } from '../store/backup.js';
import { CHECK_STATES, runCheck } from './check.js';
import { readBanFile } from '../admin/ban-file.js';
import { formatCredentials, turnCredentials, turnSecretCommand } from './turn-commands.js';

interface ConfigOption {
  config?: string;
}

interface JsonOption {
  json?: boolean;
}

/** A registration as the admin API returns it (admin-server.ts). */
interface RegistrationView {
  aor: string;
  bindings: { contactUri: string; expires: number; source: { transport: string; address: string; port: number } | null; userAgent: string | null }[];
}

/** `alice@example.test` or `SIP:alice@Example.test` -> `sip:alice@example.test` (the location service's AOR form). */
function normalizeAor(aor: string): string {
  const bare = aor.replace(/^sips?:/i, '');
  const at = bare.lastIndexOf('@');
  if (at <= 0) throw new CliError(`expected an AOR user@domain, got ${JSON.stringify(aor)}`);
  return `sip:${bare.slice(0, at)}@${bare.slice(at + 1).toLowerCase()}`;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function configOption(): Option {
  return new Option('-c, --config <file>', 'configuration file (YAML); default: built-in defaults').env('RTCEDGE_CONFIG');
}

function passwordOptions(cmd: Command): Command {
  return cmd
    .option('--password <password>', 'the password (visible in the process list: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from the first line of stdin');
}

const io = { input: process.stdin, prompt: process.stderr };

/**
 * The configuration of a command that reads or writes data_dir. When data_dir
 * is the default `./rtcedge-data`, which depends on the working directory,
 * stderr says which directory that is.
 */
function loadStoreConfig(file: string | undefined): ReturnType<typeof loadConfig> {
  const config = loadConfig(file);
  if (config.data_dir === resolve('rtcedge-data')) {
    process.stderr.write(`rtcedge: data_dir is ${config.data_dir} (the default ./rtcedge-data, relative to the working directory; set data_dir in the configuration)\n`);
  }
  return config;
}

/** Build the command tree; actions throw CliError/ConfigError/StoreError, which run() reports. */
function buildProgram(): Command {
  const program = new Command('rtcedge')
    .description('SIP registrar, stateful SIP proxy and TURN server for one domain, in one process')
    .version(packageVersion());

  program
    .command('serve')
    .description('run the SIP and TURN server until SIGINT or SIGTERM')
    .addOption(configOption())
    .option('--create-store', 'set an empty or damaged store (<data_dir>/rtcedge.db) aside as rtcedge.db.damaged-<time> and start with a new, empty one')
    .action(async (opts: ConfigOption & { createStore?: boolean }) => {
      await serve(loadConfig(opts.config), {
        configFile: opts.config === undefined ? undefined : resolve(opts.config),
        createStore: opts.createStore === true,
        reloadConfig: opts.config === undefined ? undefined : () => loadConfig(opts.config),
      });
    });

  const user = program.command('user').description('manage the users of the store (<data_dir>/rtcedge.db)');

  /** `user add` and `user passwd`: a user spec and a password, then `apply`. */
  const withPassword = (name: string, description: string) =>
    passwordOptions(user.command(name).description(description).argument('<user>', 'user[@domain]').addOption(configOption()));
  withPassword('add', 'add a user; the domain defaults to the first configured domain')
    .option('--phone <number>', 'a telephone number of the user (repeatable), for ENUM and local number lookup', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (spec: string, opts: ConfigOption & PasswordOptions & { phone?: string[] }) => {
      const config = loadStoreConfig(opts.config);
      const target = parseUserSpec(spec, config);
      console.log(await addUser(config, target, await readPassword(opts, io), opts.phone ?? []));
    });
  withPassword('passwd', "change a user's password").action(async (spec: string, opts: ConfigOption & PasswordOptions) => {
    const config = loadStoreConfig(opts.config);
    const target = parseUserSpec(spec, config);
    console.log(await changePassword(config, target, await readPassword(opts, io)));
  });

  user
    .command('del')
    .description('delete a user')
    .argument('<user>', 'user[@domain]')
    .addOption(configOption())
    .action(async (spec: string, opts: ConfigOption) => {
      const config = loadStoreConfig(opts.config);
      console.log(await deleteUser(config, parseUserSpec(spec, config, false)));
    });

  user
    .command('list')
    .description('list users as user@domain, of one domain or all')
    .argument('[domain]', 'only this domain')
    .option('--json', 'print [{username, domain, phones, algorithms, createdAt}] as JSON')
    .addOption(configOption())
    .action(async (domain: string | undefined, opts: ConfigOption & JsonOption) => {
      const config = loadStoreConfig(opts.config);
      if (opts.json) console.log(JSON.stringify(await userRecords(config, domain)));
      else for (const line of await listUsers(config, domain)) console.log(line);
    });

  user
    .command('show')
    .description('show one user: phone numbers, digest algorithms with an HA1, creation time')
    .argument('<user>', 'user[@domain]')
    .option('--json', 'print {username, domain, phones, algorithms, createdAt} as JSON')
    .addOption(configOption())
    .action(async (spec: string, opts: ConfigOption & JsonOption) => {
      const config = loadStoreConfig(opts.config);
      const u = await showUser(config, parseUserSpec(spec, config, false));
      if (opts.json) console.log(JSON.stringify(u));
      else for (const line of formatUser(u)) console.log(line);
    });

  user
    .command('import')
    .description('add the users of a CSV file with the columns user,password[,phones]; bad lines are reported and skipped')
    .argument('<file>', 'CSV file with a header line')
    .option('--json', 'print {added, skipped, errors: [{line, message}]} as JSON')
    .addOption(configOption())
    .action(async (file: string, opts: ConfigOption & JsonOption) => {
      const config = loadStoreConfig(opts.config);
      const r = await importUsers(config, file, !opts.json);
      if (opts.json) console.log(JSON.stringify(r));
      else {
        for (const e of r.errors) process.stderr.write(`${file}:${e.line}: ${e.message}\n`);
        console.log(`added ${r.added} users, skipped ${r.skipped} lines`);
      }
      if (r.skipped > 0) process.exitCode = 1;
    });

  const reg = program.command('reg').description("registrations (bindings) of the running server's location service");
  reg
    .command('list')
    .description('list bindings, of one AOR or all: AOR, contact, seconds left, source, User-Agent')
    .argument('[aor]', 'sip:user@domain or user@domain')
    .option('--json', 'print [{aor, bindings: [...]}] as JSON')
    .addOption(configOption())
    .action(async (aor: string | undefined, opts: ConfigOption & JsonOption) => {
      const config = loadConfig(opts.config);
      const query = aor === undefined ? '' : `?aor=${encodeURIComponent(normalizeAor(aor))}`;
      const regs = await adminRequest<RegistrationView[]>(config, 'GET', `/api/registrations${query}`);
      if (opts.json) return console.log(JSON.stringify(regs));
      const nowS = Date.now() / 1000;
      for (const r of regs) {
        for (const b of r.bindings) {
          const src = b.source ? `${b.source.transport} ${b.source.address}:${b.source.port}` : '-';
          console.log(`${r.aor}\t${b.contactUri}\t${Math.max(0, Math.round(b.expires - nowS))}s\t${src}\t${b.userAgent ?? '-'}`);
        }
      }
    });
  reg
    .command('del')
    .description('remove the bindings of an AOR, or one of them')
    .argument('<aor>', 'sip:user@domain or user@domain')
    .argument('[contact]', 'the contact URI of the one binding to remove')
    .addOption(configOption())
    .action(async (aor: string, contact: string | undefined, opts: ConfigOption) => {
      const config = loadConfig(opts.config);
      const a = normalizeAor(aor);
      const q = `?aor=${encodeURIComponent(a)}${contact === undefined ? '' : `&contact=${encodeURIComponent(contact)}`}`;
      const { removed } = await adminRequest<{ removed: number }>(config, 'DELETE', `/api/registrations${q}`);
      if (removed === 0) throw new CliError(`no binding of ${a}${contact === undefined ? '' : ` with contact ${contact}`}`);
      console.log(`removed ${removed} binding${removed === 1 ? '' : 's'} of ${a}`);
    });

  program
    .command('config')
    .description('configuration tools')
    .command('check')
    .description('validate a configuration file: prints "FILE: ok" or each problem with its key, exit 2')
    .argument('<file>', 'YAML configuration file')
    .action((file: string) => {
      loadConfig(file);
      console.log(`${file}: ok`);
    });

  program
    .command('reload')
    .description('make the running server re-read its certificates (like SIGHUP); calls and connections stay up')
    .addOption(configOption())
    .action(async (opts: ConfigOption) => {
      const { reloaded } = await adminRequest<{ reloaded: string[] }>(loadConfig(opts.config), 'POST', '/api/reload');
      console.log(`reloaded: ${reloaded.join(', ') || 'nothing to reload'}`);
    });

  program
    .command('backup')
    .description('write users, bindings, bans, secrets, certificates and the configuration to one file (safe while the server runs)')
    .argument('<file>', 'archive to write (.tar.gz)')
    .addOption(configOption())
    .action(async (file: string, opts: ConfigOption) => {
      const paths = await backup(loadStoreConfig(opts.config), opts.config, file);
      console.log(`wrote ${file} (${paths.length} files)`);
    });

  program
    .command('restore')
    .description('restore a backup into an empty data_dir; the configuration and certificates go to <data_dir>/restored-config/')
    .argument('<file>', 'archive written by rtcedge backup')
    .addOption(configOption())
    .action(async (file: string, opts: ConfigOption) => {
      const config = loadStoreConfig(opts.config);
      const paths = await restore(config, file);
      console.log(`restored ${paths.length} files into ${config.data_dir}`);
    });

  program
    .command('check')
    .description('monitoring plugin: SIP OPTIONS over UDP and TLS, STUN Binding, certificate expiry; prints OK|WARNING|CRITICAL|UNKNOWN and exits 0-3')
    .argument('<host>', 'server address or name')
    .option('--udp-port <port>', 'SIP UDP port, 0 to skip', '5060')
    .option('--tls-port <port>', 'SIP TLS port, 0 to skip', '5061')
    .option('--stun-port <port>', 'STUN/TURN UDP port, 0 to skip', '3478')
    .option('-w, --warning <days>', 'WARNING when the certificate expires in fewer days', '30')
    .option('-c, --critical <days>', 'CRITICAL when the certificate expires in fewer days', '7')
    .option('-t, --timeout <seconds>', 'per probe', '5')
    .action(async (host: string, o: Record<string, string>) => {
      const r = await runCheck({
        host,
        udpPort: Number(o.udpPort),
        tlsPort: Number(o.tlsPort),
        stunPort: Number(o.stunPort),
        warnDays: Number(o.warning),
        critDays: Number(o.critical),
        timeoutS: Number(o.timeout),
      });
      console.log(r.line);
      process.exitCode = CHECK_STATES[r.state];
    });

  program
    .command('bans')
    .description('list the source addresses the running server has banned (<data_dir>/bans.json)')
    .option('--json', 'print the bans as JSON')
    .addOption(configOption())
    .action((opts: ConfigOption & { json?: boolean }) => {
      const config = loadStoreConfig(opts.config);
      let bans;
      try {
        bans = readBanFile(config.data_dir);
      } catch (err) {
        throw new CliError(`cannot read the ban list: ${(err as Error).message}`);
      }
      if (opts.json) {
        console.log(JSON.stringify(bans));
        return;
      }
      // One line per ban: address, reason, remaining seconds, expiry (ISO), bans of this address so far.
      const now = Date.now();
      for (const b of bans) {
        console.log(`${b.address}\t${b.reason}\t${Math.ceil((b.until - now) / 1000)}s\tuntil ${new Date(b.until).toISOString()}\t#${b.count}`);
      }
    });

  const turnCommand = program.command('turn').description('TURN server tools');
  turnCommand
    .command('secret')
    .description('TURN REST API secrets shared by every node of a Redis store (store.type: redis): add SECRET, del SECRET, list')
    .argument('<op>', 'add | del | list')
    .argument('[secret]', 'the shared secret')
    .addOption(configOption())
    .action(async (op: string, secret: string | undefined, opts: ConfigOption) => {
      if (op !== 'add' && op !== 'del' && op !== 'list') throw new CliError(`expected add, del or list, got "${op}"`);
      for (const line of await turnSecretCommand(loadConfig(opts.config), op, secret)) console.log(line);
    });
  turnCommand
    .command('credentials')
    .description('print a TURN REST API username/password pair for USER, signed with --secret, the first of turn.auth_secrets, or the one secret of a Redis store')
    .argument('<user>', 'user name (no ":")')
    .option('--ttl <seconds>', 'validity in seconds (default 86400)')
    .option('--secret <secret>', 'sign with this secret (one the server accepts)')
    .option('--json', 'print {"username","password","ttl"} as JSON')
    .addOption(configOption())
    .action(async (user: string, opts: ConfigOption & { ttl?: string; json?: boolean; secret?: string }) => {
      const config = loadConfig(opts.config);
      const c = await turnCredentials(config, user, opts.ttl, Date.now(), opts.secret);
      if (opts.json) console.log(JSON.stringify({ username: c.username, password: c.password, ttl: c.expires - Math.floor(Date.now() / 1000) }));
      else for (const line of formatCredentials(c)) console.log(line);
    });

  return program;
}

/** Run the command line; sets process.exitCode (or exits) as documented above. */
async function run(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof CliError) {
      process.stderr.write(`rtcedge: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof StoreError || err instanceof BackupError) {
      process.stderr.write(`rtcedge: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      // One line for the operator; the stack only on request.
      const text = err instanceof Error ? (process.env.RTCEDGE_DEBUG ? (err.stack ?? err.message) : err.message.split('\n')[0]!) : String(err);
      process.stderr.write(`rtcedge: ${text}${process.env.RTCEDGE_DEBUG ? '' : ' (RTCEDGE_DEBUG=1 shows where)'}\n`);
      process.exitCode = 1;
    }
  }
}

await run(process.argv);
