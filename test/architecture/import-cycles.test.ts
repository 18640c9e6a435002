/**
 * The folder layering of docs/ARCHITECTURE.md ("Layer order"), checked on the
 * import statements of src/: no import cycle between top-level folders, every
 * import goes down the layer order, and the protocol core (sip/, transaction/,
 * auth/) reaches no socket module, directly or through what it imports.
 *
 * A plain scan of `import ... from '...'`, `export ... from '...'` and
 * `import('...')` specifiers. Type-only imports count for the folder layering (a
 * type cycle is a design cycle too) but not for reaching a socket module (they
 * are erased at run time). A file at the top of src/ (server.ts, log.ts) is a
 * node of its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * Layer order, lowest first (the same list as docs/ARCHITECTURE.md). A folder
 * may import only folders of a lower layer; folders of one layer do not import
 * each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['log', 'sip'],
  ['security'],
  ['stun', 'auth'],
  ['config'],
  ['store', 'directory'],
  ['turn'],
  ['transport'],
  ['transaction', 'dns'],
  ['registrar'],
  ['proxy'],
  ['admin'],
  ['server'],
  ['cluster'],
  ['cli'],
];

/** The protocol core: parses, matches and authenticates, never opens a socket. */
const CORE = ['sip', 'transaction', 'auth'];
const SOCKET_MODULES = ['node:net', 'node:dgram', 'node:tls', 'node:http', 'node:https', 'ws', 'net', 'dgram', 'tls'];

/** An import or re-export statement (group 1: `type` when type-only, group 2: the specifier), or a dynamic import (group 3). */
const IMPORT_RE = /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/gm;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Import specifiers of a TypeScript source text, in order; `typeOnly` for `import type`/`export type` (erased at run time). */
function importSpecifiers(text: string): { spec: string; typeOnly: boolean }[] {
  const withoutComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [...withoutComments.matchAll(IMPORT_RE)].map((m) => ({ spec: (m[2] ?? m[3])!, typeOnly: m[1] !== undefined }));
}

/** Top-level node of a file under src/: its folder, or its base name for a file at the top. */
function nodeOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? parts[0]!.replace(/\.ts$/, '') : parts[0]!;
}

interface FileImports {
  /** Files under src/ this file imports (resolved .ts paths), type-only imports included. */
  local: string[];
  /** The subset of `local` loaded at run time (not type-only). */
  runtime: string[];
  /** Package and node: specifiers. */
  external: string[];
}

function scan(): Map<string, FileImports> {
  const files = new Map<string, FileImports>();
  for (const file of sourceFiles(SRC)) {
    const local: string[] = [];
    const runtime: string[] = [];
    const external: string[] = [];
    for (const { spec, typeOnly } of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
        local.push(target);
        if (!typeOnly) runtime.push(target);
      } else if (!typeOnly) {
        external.push(spec);
      }
    }
    files.set(file, { local, runtime, external });
  }
  return files;
}

/** Folder graph: node → nodes it imports (itself excluded). */
function folderGraph(files: Map<string, FileImports>): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const [file, { local }] of files) {
    const from = nodeOf(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const target of local) {
      const to = nodeOf(target);
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

/** Strongly connected components with more than one node (Tarjan), each sorted. */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const files = scan();
const graph = folderGraph(files);
const rank = new Map(LAYERS.flatMap((layer, i) => layer.map((name) => [name, i] as const)));

describe('folder layering of src/ (docs/ARCHITECTURE.md)', () => {
  it('finds the folders and their imports (the scan itself works)', () => {
    expect(graph.get('proxy')?.has('sip')).toBe(true);
    expect(graph.get('server')?.size).toBeGreaterThan(5);
    expect(cycles(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]]))).toEqual([['a', 'b', 'c']]);
    const text = "import type { A } from '../x/a.js';\nexport { b } from './b.js';\nimport 'side';\nconst m = await import('../y.js');";
    expect(importSpecifiers(text)).toEqual([
      { spec: '../x/a.js', typeOnly: true },
      { spec: './b.js', typeOnly: false },
      { spec: 'side', typeOnly: false },
      { spec: '../y.js', typeOnly: false },
    ]);
  });

  it('has no import cycle between top-level folders', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('places every top-level folder in the layer order', () => {
    const unplaced = [...graph.keys()].filter((n) => !rank.has(n));
    expect(unplaced, 'add these folders to LAYERS here and to "Layer order" in docs/ARCHITECTURE.md').toEqual([]);
  });

  it('imports only down the layer order', () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        const rf = rank.get(from);
        const rt = rank.get(to);
        if (rf !== undefined && rt !== undefined && rt >= rf) upward.push(`${from} -> ${to}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('keeps socket modules out of the protocol core (sip/, transaction/, auth/), also through what it loads', () => {
    const offending: string[] = [];
    for (const [file] of files) {
      if (!CORE.includes(nodeOf(file))) continue;
      const seen = new Set<string>();
      const queue = [file];
      while (queue.length > 0) {
        const f = queue.pop()!;
        if (seen.has(f)) continue;
        seen.add(f);
        const imports = files.get(f);
        if (!imports) continue;
        for (const ext of imports.external) {
          if (SOCKET_MODULES.includes(ext)) offending.push(`${relative(SRC, file)} reaches ${ext} through ${relative(SRC, f)}`);
        }
        queue.push(...imports.runtime);
      }
    }
    expect(offending).toEqual([]);
  });
});
