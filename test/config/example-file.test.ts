/**
 * config/rtcedge.example.yaml against the schema (src/config/schema.ts):
 * every key the schema knows is shown in the example (set, or commented out
 * where it has no default), nested under its parent; and the example parses
 * with the real loader to exactly the defaults (test/config/load.test.ts).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import { configSchema } from '../../src/config/schema.js';

/** Key paths of a zod schema: object keys, through defaults, optionals, transforms, unions and array elements. */
function keyPaths(schema: unknown, path: string[] = [], out: string[][] = []): string[][] {
  const def = (schema as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  switch (def.type) {
    case 'object':
      for (const [key, value] of Object.entries(def.shape as Record<string, unknown>)) {
        out.push([...path, key]);
        keyPaths(value, [...path, key], out);
      }
      break;
    case 'default':
    case 'optional':
    case 'nullable':
    case 'prefault':
    case 'readonly':
      keyPaths(def.innerType, path, out);
      break;
    case 'pipe':
      keyPaths(def.in, path, out);
      break;
    case 'array':
      keyPaths(def.element, path, out);
      break;
    case 'union':
      for (const option of def.options as unknown[]) keyPaths(option, path, out);
      break;
  }
  return out;
}

const EXAMPLE = resolve(__dirname, '../../config/rtcedge.example.yaml');

/**
 * Line where `path` is shown: its first segment at the start of a line (a
 * top-level key, possibly commented out), each further segment as `key:` on
 * a later line (block or flow style, set or commented) before the next
 * top-level key; -1 when not found.
 */
function lineOf(lines: string[], path: string[]): number {
  let at = lines.findIndex((l) => new RegExp(`^#? ?${path[0]}:`).test(l));
  if (at < 0) return -1;
  let end = lines.findIndex((l, i) => i > at && /^[a-z_]+:/.test(l));
  if (end < 0) end = lines.length;
  for (const key of path.slice(1)) {
    const re = new RegExp(`(^|[\\s{,#\`-])${key}:`);
    const next = lines.findIndex((l, i) => i > at && i < end && re.test(l));
    if (next < 0) return -1;
    at = next;
  }
  return at;
}

test('every key of the schema is shown in the example file, under its parent', () => {
  const lines = readFileSync(EXAMPLE, 'utf8').split('\n');
  const paths = keyPaths(configSchema);
  expect(paths.length).toBeGreaterThan(100);
  const missing = paths.filter((p) => lineOf(lines, p) < 0).map((p) => p.join('.'));
  expect(missing).toEqual([]);
});

test('the key search finds what is there and misses what is not', () => {
  const lines = ['sip:', '  registrar:', '    min_expires: 60', 'turn:', '  # realm: x', '  listen:', '    - { transport: udp, port: 1 }'];
  expect(lineOf(lines, ['sip', 'registrar', 'min_expires'])).toBe(2);
  expect(lineOf(lines, ['turn', 'realm'])).toBe(4);
  expect(lineOf(lines, ['turn', 'listen', 'transport'])).toBe(6);
  expect(lineOf(lines, ['turn', 'min_expires'])).toBe(-1);
  expect(lineOf(lines, ['sip', 'realm'])).toBe(-1);
});
