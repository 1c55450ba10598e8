// The published package as a registry shows it: licence, links, and types for every export under every resolution.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  license: string;
  repository?: { url: string };
  homepage?: string;
  bugs?: { url: string };
  exports: Record<string, string | { require: { types: string } }>;
  typesVersions?: Record<string, Record<string, string[]>>;
};
const repositoryPage = 'https://github.com/orq-ai/express-orq-identity';

let packed: string[] | undefined;
/** The files `npm pack` would put in the tarball (without building: dist is judged by `files`). */
function packedFiles(): string[] {
  if (packed !== undefined) return packed;
  const output = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  packed = (JSON.parse(output) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((file) => file.path) ?? [];
  return packed;
}

function readmeLinks(): string[] {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  return [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? '');
}

describe('package', () => {
  it('ships the MIT licence it declares, and says where the project lives', () => {
    expect(pkg.license).toBe('MIT');
    expect(packedFiles()).toContain('LICENSE');
    expect(readFileSync(`${root}LICENSE`, 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) 2026 express-orq-identity contributors/);
    expect(pkg.repository?.url).toBe(`git+${repositoryPage}.git`);
    expect(pkg.homepage).toBe(`${repositoryPage}#readme`);
    expect(pkg.bugs?.url).toBe(`${repositoryPage}/issues`);
  });

  it('has no README link that is dead in the tarball: relative links point at shipped files, repository links at real ones', () => {
    const shipped = packedFiles();
    const links = readmeLinks();
    const relative = links.filter((link) => !/^(https?:|#|mailto:)/.test(link));
    expect(relative.filter((link) => !shipped.includes(link.replace(/^\.\//, '')))).toEqual([]);
    const inRepository = links.filter((link) => link.startsWith(`${repositoryPage}/`) && /\/(blob|tree)\/main\//.test(link));
    expect(inRepository.length).toBeGreaterThan(0);
    const missing = inRepository.filter((link) => !existsSync(`${root}${link.replace(/^.*\/(blob|tree)\/main\//, '').replace(/#.*$/, '')}`));
    expect(missing).toEqual([]);
  });

  it('has no README link to a heading that does not exist', () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    // GitHub's slugs: lower case, punctuation dropped, spaces to hyphens.
    const slugs = [...readme.matchAll(/^#{2,4} (.+)$/gm)].map((match) =>
      (match[1] ?? '').toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'),
    );
    const anchors = readmeLinks().filter((link) => link.startsWith('#')).map((link) => link.slice(1));
    expect(anchors.length).toBeGreaterThan(0);
    expect(anchors.filter((anchor) => !slugs.includes(anchor))).toEqual([]);
  });

  it('resolves the types of every export under moduleResolution node10 too (typesVersions)', () => {
    // node10 ignores `exports`: without a typesVersions entry, `express-orq-identity/testing` has no types there.
    const subpaths = Object.keys(pkg.exports).filter((key) => key !== '.' && key !== './package.json');
    expect(subpaths.length).toBeGreaterThan(0);
    for (const subpath of subpaths) {
      const entry = pkg.exports[subpath];
      const requireTypes = typeof entry === 'object' ? entry.require.types : undefined;
      expect(pkg.typesVersions?.['*']?.[subpath.replace(/^\.\//, '')], subpath).toEqual([requireTypes]);
    }
  });
});
