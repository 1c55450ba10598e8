// The docs cannot drift: every link of README.md, CONTRIBUTING.md and docs/*.md (and of the reports and the examples'
// READMEs) leads somewhere, and the README's TypeScript compiles against the package's source as an app would import it.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import type { OrqIdentityOptions } from '../src/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const repositoryFile = /^https:\/\/github\.com\/orq-ai\/express-orq-identity\/(?:blob|tree)\/main\/([^#?]*)(#.*)?$/;

/** The user's docs, the maintainer's, and the reports and example READMEs they link to. */
const documents = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`),
  'test/MUTATION.md',
  'bench/README.md',
  // Each example is a folder with its README; the demo runners beside them are not.
  ...readdirSync(join(root, 'examples'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => `examples/${entry.name}/README.md`),
];

/** The text with code (fenced blocks, inline spans) and HTML comments blanked out, line breaks kept, so what is left is prose. */
function prose(markdown: string): string {
  const blank = (text: string): string => text.replace(/[^\n]/g, ' ');
  return markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, blank)
    .replace(/<!--[\s\S]*?-->/g, blank)
    .replace(/(`+)[^`][\s\S]*?\1/g, blank);
}

/** GitHub's heading ids (github-slugger): the heading's text, lower-cased, punctuation dropped, each space a hyphen; repeats get -1, -2, … */
function headingSlugs(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const slugs = new Set<string>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');
  for (const match of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const text = (match[1] ?? '')
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text, not its target
      .replace(/[`*]/g, '')
      .replace(/<[^>]+>/g, '');
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    slugs.add(count === 0 ? base : `${base}-${count}`);
  }
  return slugs;
}

/** The targets of the inline links and images of a markdown text, with the line each is on. */
function links(markdown: string): Array<{ target: string; line: number }> {
  const text = prose(markdown);
  return [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => ({
    target: match[1] ?? '',
    line: text.slice(0, match.index).split('\n').length,
  }));
}

/**
 * What is wrong with the links of one document (a path relative to `base`): a relative link or a link into this
 * repository on GitHub whose file is missing, or whose #anchor is no heading of its target. Links elsewhere are not followed.
 */
function linkProblems(document: string, markdown: string, base: string, readTarget: (path: string) => string | undefined): string[] {
  const problems: string[] = [];
  for (const { target, line } of links(markdown)) {
    let path: string;
    let anchor: string | undefined;
    const inRepository = repositoryFile.exec(target);
    if (inRepository !== null) {
      path = decodeURIComponent(inRepository[1] ?? '').replace(/\/$/, '');
      anchor = inRepository[2]?.slice(1);
    } else if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
      continue;
    } else {
      const [file = '', hash] = target.split('#', 2);
      path = file === '' ? document : relative(base, resolve(base, dirname(document), decodeURIComponent(file))).split('\\').join('/');
      anchor = hash;
    }
    const where = `${document}:${line} → ${target}`;
    const content = readTarget(path);
    if (content === undefined) {
      problems.push(`${where}: no such file`);
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!path.endsWith('.md')) {
      problems.push(`${where}: an anchor into a file that is not markdown`);
    } else if (!headingSlugs(content).has(anchor)) {
      problems.push(`${where}: no heading with the id "${anchor}"`);
    }
  }
  return problems;
}

/** A file's text, '' for a directory (it exists, it has no headings), undefined when missing. */
function readRepositoryPath(path: string): string | undefined {
  const absolute = join(root, path);
  if (!absolute.startsWith(root) || !existsSync(absolute)) return undefined;
  return statSync(absolute).isDirectory() ? '' : readFileSync(absolute, 'utf8');
}

describe('links of the docs', () => {
  it('finds the documents and their links', () => {
    expect(documents).toEqual(expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'docs/api.md', 'docs/failures.md']));
    const count = documents.reduce((sum, document) => sum + links(readFileSync(join(root, document), 'utf8')).length, 0);
    expect(count).toBeGreaterThan(50);
  });

  it.each(documents)('%s: every relative link and every anchor leads somewhere', (document) => {
    expect(linkProblems(document, readFileSync(join(root, document), 'utf8'), root, readRepositoryPath)).toEqual([]);
  });

  it('reports a missing file, a missing anchor, and neither for good links or links in code (the checker itself)', () => {
    const headings = '# A page\n\n## Node versions and @orq-ai/node\n\n## Same\n\n## Same\n\n### src/store/command.ts\n';
    const page = [
      '[ok](a.md#node-versions-and-orq-ainode) [ok](a.md#same-1) [ok](#a-page) [ok](../README.md) [ok](a.md#srcstorecommandts)',
      '[ok](https://github.com/orq-ai/express-orq-identity/blob/main/docs/a.md#same) [ok](https://example.com/x#y)',
      '`[in code](missing.md)` and <!-- [in a comment](missing.md) -->',
      '```md\n[in a block](missing.md)\n```',
      '[gone](missing.md) [no anchor](a.md#same-2) [no anchor here](#nowhere)',
      '[gone on GitHub](https://github.com/orq-ai/express-orq-identity/blob/main/docs/b.md)',
    ].join('\n');
    const files: Record<string, string> = { 'docs/a.md': headings + page, 'README.md': '# Title\n' };
    expect(linkProblems('docs/a.md', headings + page, '/repo', (path) => files[path])).toEqual([
      'docs/a.md:16 → missing.md: no such file',
      'docs/a.md:16 → a.md#same-2: no heading with the id "same-2"',
      'docs/a.md:16 → #nowhere: no heading with the id "nowhere"',
      'docs/a.md:17 → https://github.com/orq-ai/express-orq-identity/blob/main/docs/b.md: no such file',
    ]);
  });
});

describe('README.md', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it('is short enough to read in ten minutes: at most 15 000 characters', () => {
    expect([...readme].length).toBeLessThanOrEqual(15_000);
  });

  it('keeps the two commands of "Try it" exactly', () => {
    const shell = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '').join('\n');
    expect(shell).toMatch(/^npm install && npm run demo(\s|$)/m);
    expect(shell).toMatch(/^npm test(\s|$)/m);
  });

  it('has a row with a type and a default for every option of orqIdentity()', () => {
    // Fails to compile when OrqIdentityOptions gains an option this list (and so the check below) misses.
    const options = [
      'client', 'apiKey', 'serverURL', 'getUser', 'cache', 'shared', 'budget', 'backlog', 'lookupOrder', 'timeoutMs', 'failOpen', 'onError', 'skip',
      'context', 'lookupTimeoutMs', 'maxConcurrency', 'maxQueue', 'retries', 'circuitBreaker', 'failureMemoryMs', 'syncProfile', 'metrics',
    ] as const satisfies ReadonlyArray<keyof OrqIdentityOptions>;
    const unlisted: Exclude<keyof OrqIdentityOptions, (typeof options)[number]> extends never ? true : false = true;
    expect(unlisted).toBe(true);
    const rows = new Map(
      [...readme.matchAll(/^\| `(\w+)` \|(.+)$/gm)].map((match) => [match[1] ?? '', (match[2] ?? '').split(/(?<!\\)\|/).map((cell) => cell.trim())]),
    );
    for (const option of options) {
      const [type = '', defaultValue = '', what = ''] = rows.get(option) ?? [];
      expect({ option, type: type !== '', default: defaultValue !== '', what: what !== '' }).toEqual({ option, type: true, default: true, what: true });
    }
  });

  it('compiles every ts block against the package source, as an app importing express-orq-identity would', () => {
    const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => ({
      code: match[1] ?? '',
      line: readme.slice(0, match.index).split('\n').length + 1,
    }));
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    // The blocks live, in memory only, beside the tests, so imports resolve through this checkout's node_modules.
    const folder = join(root, 'test', 'readme-blocks');
    const virtual = new Map<string, string>([
      // `app` is the reader's Express app; a block that makes its own shadows this one.
      [join(folder, 'app.d.ts'), "declare global { const app: import('express').Express; }\nexport {};\n"],
      // Auth layers the README shows but this repository does not install: declared with the shape the README uses.
      [join(folder, 'auth-layers.d.ts'), "declare module 'express-jwt' {\n  export function expressjwt(options: { secret: string; algorithms: string[] }): import('express').RequestHandler;\n}\n"],
      // A block that must not compile: proof that the check below can fail.
      [join(folder, 'broken.ts'), "import { orqIdentity } from 'express-orq-identity';\norqIdentity({ timeoutMs: '2s' });\n"],
    ]);
    blocks.forEach((block, index) => virtual.set(join(folder, `block-${index + 1}.ts`), block.code));

    const config = ts.readConfigFile(join(root, 'tsconfig.json'), (path) => ts.sys.readFile(path));
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    const compilerOptions: ts.CompilerOptions = {
      ...options,
      noEmit: true,
      types: ['node'],
      // As the README promises: its code compiles under the strictest settings `tsc --init` writes.
      exactOptionalPropertyTypes: true,
      verbatimModuleSyntax: true,
      paths: {
        'express-orq-identity': [join(root, 'src/index.ts')],
        'express-orq-identity/testing': [join(root, 'src/testing/index.ts')],
      },
    };
    const host = ts.createCompilerHost(compilerOptions);
    const fileExists = host.fileExists.bind(host);
    const readFile = host.readFile.bind(host);
    const getSourceFile = host.getSourceFile.bind(host);
    host.fileExists = (path) => virtual.has(path) || fileExists(path);
    host.readFile = (path) => virtual.get(path) ?? readFile(path);
    host.getSourceFile = (path, language, onError, create) => {
      const text = virtual.get(path);
      return text === undefined ? getSourceFile(path, language, onError, create) : ts.createSourceFile(path, text, language, true);
    };
    const program = ts.createProgram([...virtual.keys()], compilerOptions, host);
    const errors = ts.getPreEmitDiagnostics(program).flatMap((diagnostic) => {
      const file = diagnostic.file?.fileName;
      if (file === undefined || !virtual.has(file)) return [];
      const name = relative(folder, file);
      const at = diagnostic.start === undefined ? 0 : diagnostic.file?.getLineAndCharacterOfPosition(diagnostic.start).line ?? 0;
      const block = /^block-(\d+)\.ts$/.exec(name);
      const where = block === null ? name : `README.md:${(blocks[Number(block[1]) - 1]?.line ?? 0) + at}`;
      return [`${where}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`];
    });
    expect(errors.filter((error) => error.startsWith('broken.ts')).length, 'the broken sample must not compile').toBeGreaterThan(0);
    expect(errors.filter((error) => !error.startsWith('broken.ts'))).toEqual([]);
  }, 180_000);
});
