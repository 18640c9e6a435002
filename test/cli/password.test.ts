import { PassThrough } from 'node:stream';
import { expect, test } from 'vitest';
import { CliError } from '../../src/cli/errors.js';
import { readPassword } from '../../src/cli/password.js';

function streams(tty: boolean) {
  const input = Object.assign(new PassThrough(), { isTTY: tty });
  const prompt = new PassThrough();
  let shown = '';
  prompt.on('data', (d: Buffer) => (shown += d.toString()));
  return { io: { input, prompt }, input, shown: () => shown };
}

async function cliError(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('expected a CliError');
}

test('--password is used as given', async () => {
  const s = streams(false);
  expect(await readPassword({ password: 'a b' }, s.io)).toBe('a b');
});

test('--password-stdin takes the first line only', async () => {
  const s = streams(false);
  const p = readPassword({ passwordStdin: true }, s.io);
  s.input.write('first\r\nsecond\n');
  expect(await p).toBe('first');
});

test('--password-stdin without a line end at EOF', async () => {
  const s = streams(false);
  const p = readPassword({ passwordStdin: true }, s.io);
  s.input.end('only');
  expect(await p).toBe('only');
});

test('--password-stdin with nothing on stdin', async () => {
  const s = streams(false);
  const p = readPassword({ passwordStdin: true }, s.io);
  s.input.end();
  expect((await cliError(p)).message).toBe('no password on stdin');
});

test('both options at once are refused', async () => {
  const s = streams(false);
  expect((await cliError(readPassword({ password: 'x', passwordStdin: true }, s.io))).message).toBe(
    'give either --password or --password-stdin, not both',
  );
});

test('terminal: asked twice, nothing echoed', async () => {
  const s = streams(true);
  const p = readPassword({}, s.io);
  await new Promise((r) => setImmediate(r));
  s.input.write('hunter2\r');
  await new Promise((r) => setImmediate(r));
  s.input.write('hunter2\r');
  expect(await p).toBe('hunter2');
  expect(s.shown()).toBe('Password: \nPassword again: \n');
});

test('terminal: entries that differ', async () => {
  const s = streams(true);
  const p = readPassword({}, s.io);
  await new Promise((r) => setImmediate(r));
  s.input.write('one\r');
  await new Promise((r) => setImmediate(r));
  s.input.write('two\r');
  const err = await cliError(p);
  expect(err.message).toBe('the passwords do not match');
  expect(err.exitCode).toBe(1);
});

test('not a terminal and no option', async () => {
  const s = streams(false);
  expect((await cliError(readPassword({}, s.io))).message).toBe(
    'no password: give --password-stdin or --password, or run on a terminal',
  );
});
