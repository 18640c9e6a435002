#!/usr/bin/env node
/**
 * The `rtcedge` command: `serve`, `user add|passwd|del|list`, `bans` and `turn credentials`.
 *
 * Exit status: 0 success, 1 a command that failed (one line on stderr: a bad
 * path named by the configuration, an empty or damaged store, an unexpected
 * error without its stack unless RTCEDGE_DEBUG is set), 2 a configuration
 * error (message names the file and the key).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { StoreError } from '../store/errors.js';
import { CliError } from './errors.js';
import { type PasswordOptions, readPassword } from './password.js';
import { serve } from './serve.js';
import { addUser, changePassword, deleteUser, listUsers, parseUserSpec } from './user-commands.js';
import { readBanFile } from '../admin/ban-file.js';
import { formatCredentials, turnCredentials } from './turn-commands.js';

interface ConfigOption {
  config?: string;
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
      await serve(loadConfig(opts.config), { configFile: opts.config === undefined ? undefined : resolve(opts.config), createStore: opts.createStore === true });
    });

  const user = program.command('user').description('manage the users of the store (<data_dir>/rtcedge.db)');

  /** `user add` and `user passwd`: a user spec and a password, then `apply`. */
  const withPassword = (name: string, description: string, apply: typeof addUser) =>
    passwordOptions(user.command(name).description(description).argument('<user>', 'user[@domain]').addOption(configOption())).action(
      async (spec: string, opts: ConfigOption & PasswordOptions) => {
        const config = loadConfig(opts.config);
        const target = parseUserSpec(spec, config);
        const password = await readPassword(opts, io);
        console.log(apply(config, target, password));
      },
    );
  withPassword('add', 'add a user; the domain defaults to the first configured domain', addUser);
  withPassword('passwd', "change a user's password", changePassword);

  user
    .command('del')
    .description('delete a user')
    .argument('<user>', 'user[@domain]')
    .addOption(configOption())
    .action((spec: string, opts: ConfigOption) => {
      const config = loadConfig(opts.config);
      console.log(deleteUser(config, parseUserSpec(spec, config, false)));
    });

  user
    .command('list')
    .description('list users as user@domain, of one domain or all')
    .argument('[domain]', 'only this domain')
    .addOption(configOption())
    .action((domain: string | undefined, opts: ConfigOption) => {
      const config = loadConfig(opts.config);
      for (const line of listUsers(config, domain)) console.log(line);
    });

  program
    .command('bans')
    .description('list the source addresses the running server has banned (<data_dir>/bans.json)')
    .option('--json', 'print the bans as JSON')
    .addOption(configOption())
    .action((opts: ConfigOption & { json?: boolean }) => {
      const config = loadConfig(opts.config);
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

  program
    .command('turn')
    .description('TURN server tools')
    .command('credentials')
    .description('print a TURN REST API username/password pair for USER, signed with the first of turn.auth_secrets')
    .argument('<user>', 'user name (no ":")')
    .option('--ttl <seconds>', 'validity in seconds (default 86400)')
    .option('--json', 'print {"username","password","ttl"} as JSON')
    .addOption(configOption())
    .action((user: string, opts: ConfigOption & { ttl?: string; json?: boolean }) => {
      const config = loadConfig(opts.config);
      const c = turnCredentials(config, user, opts.ttl);
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
    } else if (err instanceof StoreError) {
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
