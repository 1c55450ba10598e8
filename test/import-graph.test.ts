// The arrows between the files of src/ run one way: no file reaches itself through its relative imports, and the
// layers below the core (registration/, calls/, store/, transport/, observability/, errors/) never import the files that configure or drive them.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));

/** Every .ts file under a folder, as paths relative to src/ with `/` separators. */
function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(src, path).split('\\').join('/')] : [];
  });
}

/**
 * The relative modules a file imports or re-exports, type-only ones included (a cycle of types is still a cycle
 * for whoever reads the code), and `import('./x.js')` expressions. Comments are removed first so an example in a
 * doc comment is not read as an import.
 */
function relativeImports(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specifiers = [
    ...code.matchAll(/\b(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?'(\.{1,2}\/[^']+)'/g),
    ...code.matchAll(/\bimport\(\s*'(\.{1,2}\/[^']+)'\s*\)/g),
  ].map((match) => match[1] ?? '');
  return specifiers.map((specifier) => relative(src, resolve(src, dirname(file), specifier.replace(/\.js$/, '.ts'))).split('\\').join('/'));
}

function importGraph(): Map<string, string[]> {
  return new Map(sourceFiles(src).map((file) => [file, relativeImports(file, readFileSync(join(src, file), 'utf8'))]));
}

/** Each cycle once, as the files along it starting from its first file in sort order: a → b → a. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found = new Map<string, string[]>();
  const done = new Set<string>();
  const walk = (file: string, path: string[]): void => {
    const at = path.indexOf(file);
    if (at !== -1) {
      const loop = path.slice(at);
      const first = loop.indexOf([...loop].sort()[0] ?? file);
      const rotated = [...loop.slice(first), ...loop.slice(0, first)];
      found.set(rotated.join(' → '), [...rotated, rotated[0] ?? file]);
      return;
    }
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) walk(next, [...path, file]);
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) walk(file, []);
  return [...found.values()];
}

describe('import graph of src/', () => {
  const graph = importGraph();

  it('reads every relative import, and every one names a file that exists', () => {
    const edges = [...graph.values()].flat();
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.filter((target) => !graph.has(target))).toEqual([]);
    expect(graph.get('testing/http.ts')).toContain('testing/store.ts');
  });

  it('finds a cycle when there is one (the detector itself)', () => {
    const sample = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts', 'd.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', []],
    ]);
    expect(cycles(sample)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', []]]))).toEqual([]);
    expect(relativeImports('x/y.ts', "import type { A } from '../a.js';\nexport { B } from './b.js';\n// import { C } from './c.js';\n"))
      .toEqual(['a.ts', 'x/b.ts']);
  });

  it('has no import cycle', () => {
    expect(cycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('keeps the layers below the core from importing the files that configure or drive them', () => {
    const lower = /^(registration|calls|store|transport|observability|errors)\//;
    const upper = new Set(['index.ts', 'middleware.ts', 'resolver.ts', 'options.ts', 'background-updates.ts']);
    const upward = [...graph].flatMap(([file, targets]) =>
      lower.test(file) ? targets.filter((target) => upper.has(target)).map((target) => `${file} → ${target}`) : [],
    );
    expect(upward).toEqual([]);
  });

  it('has nothing outside src/testing import the emulator', () => {
    const intoTesting = [...graph].flatMap(([file, targets]) =>
      file.startsWith('testing/') ? [] : targets.filter((target) => target.startsWith('testing/')).map((target) => `${file} → ${target}`),
    );
    expect(intoTesting).toEqual([]);
  });
});
