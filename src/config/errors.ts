/**
 * Errors of the configuration layer.
 */

/**
 * A configuration file (or a file under data_dir) that cannot be used.
 *
 * The message names the file and, when it is about one key, the key path:
 * `config /etc/rtcedge.yaml: sip.listen[0].port: expected a number 0-65535, got "abc"`.
 * Several problems give several lines, each in that form. `file` is undefined
 * for the built-in defaults (no file given).
 */
export class ConfigError extends Error {
  /** Absolute path of the file at fault, or undefined for the defaults. */
  readonly file: string | undefined;
  /** One entry per problem, without the `config <file>: ` prefix. */
  readonly problems: string[];

  /**
   * @param file path of the file at fault (undefined: the built-in defaults).
   * @param problems one message per problem, each `key.path: what is wrong` or a plain sentence.
   */
  constructor(file: string | undefined, problems: string[]) {
    const prefix = `config ${file ?? '(defaults)'}: `;
    super(problems.map((p) => prefix + p).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}
