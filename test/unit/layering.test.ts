// The folders of src/ depend on each other one way only (docs/design.md §2): this test reads every
// import and fails on a cycle between folders or on an import against the layering. Run it alone to
// see the module graph: node --import tsx --test test/unit/layering.test.ts (it prints the edges).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const SRC = join(import.meta.dirname, '..', '..', 'src');
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** A file's top folder under src/ ("(root)" for main.ts, app.ts, broker.ts). */
const folderOf = (file: string) => {
  const rel = relative(SRC, file);
  return rel.includes(sep) ? rel.split(sep)[0]! : '(root)';
};

function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of files(SRC)) {
    const from = folderOf(file);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const to = folderOf(resolve(dirname(file), m[1]!));
      if (to === from) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from)!.add(to);
    }
  }
  return graph;
}

const graph = folderGraph();

test('the module graph (folder → folders it imports)', () => {
  for (const [from, to] of [...graph].sort()) console.log(`${from} -> ${[...to].sort().join(', ')}`);
  assert.ok(graph.size >= 8, 'the graph was read');
});

test('no cycle between folders', () => {
  const onCycle = (start: string): string[] | undefined => {
    const stack: string[][] = [[start]];
    while (stack.length > 0) {
      const path = stack.pop()!;
      for (const next of graph.get(path.at(-1)!) ?? []) {
        if (next === start) return [...path, start];
        if (!path.includes(next)) stack.push([...path, next]);
      }
    }
    return undefined;
  };
  for (const folder of graph.keys()) {
    const cycle = onCycle(folder);
    assert.equal(cycle, undefined, `folder cycle: ${cycle?.join(' -> ')}`);
  }
});

test('the layers import only downwards', () => {
  // What each folder may import (besides itself): the kernel nothing; observability nothing of the
  // domain; client-auth below the IdPs; the IdPs below the token service and diagnostics.
  const allowed: Record<string, string[]> = {
    kernel: [],
    net: [],
    observability: ['kernel'],
    'client-auth': ['kernel', 'observability', 'net'],
    idps: ['kernel', 'observability', 'net', 'client-auth'],
    cache: ['kernel', 'observability'],
    config: ['kernel', 'client-auth', 'idps', 'cache'],
    callers: ['kernel', 'observability', 'net', 'cache', 'config'],
    core: ['kernel', 'observability', 'client-auth', 'idps', 'cache', 'config'],
    diagnostics: ['kernel', 'observability', 'client-auth', 'idps', 'core', 'config'],
    // Sign-ins and the redemption of refresh tokens: beside core, not below it (core knows a credential's grant only by its interface).
    delegated: ['kernel', 'observability', 'net', 'client-auth', 'idps', 'cache', 'callers'],
  };
  for (const [from, may] of Object.entries(allowed)) {
    const extra = [...(graph.get(from) ?? [])].filter((to) => !may.includes(to));
    assert.deepEqual(extra, [], `${from}/ imports ${extra.join(', ')}`);
  }
});
