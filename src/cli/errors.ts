/**
 * Errors of the command line: a message for the user and the exit status.
 */

/** A command that cannot be carried out; main prints `message` (no stack) and exits with `exitCode`. */
export class CliError extends Error {
  /** Process exit status, 1 unless stated. */
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
