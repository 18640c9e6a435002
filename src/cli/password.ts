/**
 * Getting a password from the user: an option, the first line of stdin, or a
 * prompt on the terminal without echo.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CliError } from './errors.js';

/** Where the password comes from (the CLI options `--password`, `--password-stdin`). */
export interface PasswordOptions {
  password?: string;
  passwordStdin?: boolean;
}

/** Streams used to read a password; process.stdin/stderr in the CLI. */
export interface PasswordIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where prompts go (stderr, so stdout stays for results). */
  prompt: NodeJS.WritableStream;
}

/**
 * The password to set: `--password` as given; with `--password-stdin` the
 * first line of input (without its CR/LF); otherwise, when input is a
 * terminal, asked twice without echo.
 *
 * @throws CliError when the password is empty, stdin ends before a line, the
 *   two entries differ, the prompt is interrupted (exit 130), or there is no
 *   terminal to ask on.
 */
export async function readPassword(opts: PasswordOptions, io: PasswordIo): Promise<string> {
  if (opts.password !== undefined && opts.passwordStdin) {
    throw new CliError('give either --password or --password-stdin, not both');
  }
  let password: string;
  if (opts.password !== undefined) {
    password = opts.password;
  } else if (opts.passwordStdin) {
    const line = await readFirstLine(io.input);
    if (line === undefined) throw new CliError('no password on stdin');
    password = line;
  } else if (io.input.isTTY) {
    password = await promptHidden('Password: ', io);
    const again = await promptHidden('Password again: ', io);
    if (again !== password) throw new CliError('the passwords do not match');
  } else {
    throw new CliError('no password: give --password-stdin or --password, or run on a terminal');
  }
  if (password === '') throw new CliError('the password is empty');
  return password;
}

/** First line of a stream without its line end, or undefined when it ends with no data. */
function readFirstLine(input: NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve) => {
    const rl = createInterface({ input, crlfDelay: Infinity, terminal: false });
    let done = false;
    rl.once('line', (line) => {
      done = true;
      rl.close();
      input.pause();
      resolve(line);
    });
    rl.once('close', () => {
      if (!done) resolve(undefined);
    });
  });
}

/** Ask on a terminal; typed characters are not echoed. */
function promptHidden(question: string, io: PasswordIo): Promise<string> {
  io.prompt.write(question);
  // readline echoes into its output stream: give it one that drops everything.
  const muted = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const rl = createInterface({ input: io.input, output: muted, terminal: true });
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    rl.once('line', (line) => {
      settled = true;
      resolve(line);
    });
    rl.once('SIGINT', () => {
      settled = true;
      reject(new CliError('interrupted', 130));
    });
    rl.once('close', () => {
      if (!settled) reject(new CliError('no password entered'));
    });
  }).finally(() => {
    rl.close();
    io.prompt.write('\n');
  });
}
