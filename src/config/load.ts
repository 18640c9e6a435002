/**
 * Reading the configuration file: YAML -> plain data -> zod schema -> Config.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import { type Config, configSchema } from './schema.js';

export { ConfigError } from './errors.js';
export type { Config } from './schema.js';

/**
 * Load and validate the configuration.
 *
 * @param path YAML file; relative to process.cwd(). Undefined: all defaults.
 * @returns the configuration with every default filled in, `domains`
 *   lowercase, and `data_dir` made absolute against process.cwd().
 * @throws ConfigError when the file is missing or unreadable, is not valid
 *   YAML (message names the line and column), or does not match the schema
 *   (one line per problem, each naming the key path).
 */
export function loadConfig(path?: string): Config {
  if (path === undefined) return defaultConfig();
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [code === 'ENOENT' ? 'file not found' : `cannot read: ${(err as Error).message}`]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        const where = `line ${pos.line}, column ${pos.col}`;
        return `YAML syntax error at ${where}: ${firstLine(e.message)}`;
      }),
    );
  }
  let data: unknown;
  try {
    // yaml refuses aliases that expand past maxAliasCount (100 by default): an alias bomb.
    data = doc.toJS();
  } catch (err) {
    throw new ConfigError(file, [`YAML: ${firstLine((err as Error).message)} (write the values out instead of expanding aliases of aliases)`]);
  }
  return parseConfig(data, file);
}

/** The configuration used without a file: every default, data_dir absolute against process.cwd(). */
export function defaultConfig(): Config {
  return parseConfig({});
}

/**
 * Validate already-parsed data (what a YAML document holds) against the schema.
 * A key whose value is null (YAML `key:` with nothing or only comments under
 * it) counts as absent.
 *
 * @param data plain data: a mapping, or null/undefined for an empty file.
 * @param file the file it came from, for error messages (undefined: defaults).
 * @throws ConfigError listing every problem, each with its key path.
 */
export function parseConfig(data: unknown, file?: string): Config {
  if (data === null || data === undefined) data = {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(file, [`expected a mapping of keys at the top level, got ${describe(data)}`]);
  }
  const result = configSchema.safeParse(stripNulls(data), { reportInput: true });
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.flatMap(formatIssue));
  }
  const config = result.data;
  config.data_dir = resolve(process.cwd(), config.data_dir);
  return config;
}

/** Remove null-valued keys of mappings, recursively (arrays keep their nulls, which then fail validation). */
function stripNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripNulls);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== null) out[k] = stripNulls(v);
    }
    return out;
  }
  return value;
}

/** `['sip', 'listen', 0, 'port']` -> `sip.listen[0].port`. */
function keyPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s === '' ? String(seg) : `.${String(seg)}`;
  }
  return s;
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `unknown key "${keyPath([...issue.path, k])}"`);
  }
  const where = issue.path.length > 0 ? `${keyPath(issue.path)}: ` : '';
  const input = (issue as { input?: unknown }).input;
  if (issue.code === 'invalid_type' && input === undefined) {
    return [`${where}missing (${issue.message})`];
  }
  const primitive = typeof input === 'string' || typeof input === 'number' || typeof input === 'boolean';
  if (input === undefined || (issue.code === 'custom' && !primitive)) return [`${where}${issue.message}`];
  return [`${where}${issue.message}, got ${describe(input)}`];
}

/** Short description of a value for an error message: `"abc"`, `70000`, `a list`. */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}
