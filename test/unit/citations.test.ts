// Comments and docs cite what a maintainer of this repository can open: docs/design.md sections,
// RFC sections, vendor pages, public issues. This walks the repository's text files and fails on
// citations of documents that are not in it (the old design notes and fact sheets, their source
// keys, paths outside the repository), and on any docs/design.md section number that the document
// does not have.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const DESIGN_DOC = 'docs/design.md';
const SELF = relative(ROOT, import.meta.filename);

/** What is scanned: the folders and files a maintainer reads. */
const SCANNED = ['src', 'test', 'bench', 'scripts', 'helm', 'docs', '.ci', 'README.md', 'SECURITY.md', 'Dockerfile'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'coverage', 'test-artifacts', '.git']);
const TEXT_EXTENSIONS = new Set(['.ts', '.js', '.mjs', '.cjs', '.json', '.md', '.yaml', '.yml', '.tpl', '.txt', '.sh', '.py', '.html', '.css', '']);

/** Citations nobody can follow from this repository, with what to write instead. */
const FORBIDDEN: { pattern: RegExp; why: string }[] = [
  { pattern: /\bDESIGN(?:\.md)?\s*§/, why: 'cites the old design notes: cite docs/design.md §N' },
  { pattern: /\b[Rr]eference\b[^)\n]{0,30}§/, why: 'cites a reference fact sheet: cite docs/design.md §N, an RFC section or the vendor page' },
  { pattern: /\.\.\/shared\b|\/work\/shared\b/, why: 'a path outside the repository' },
  {
    pattern: /\b(?:entra-assertions-and-managed-identity|peer-systems-and-user-pains|local-idps-for-tests|credentials-refresh-tokens-and-redis-topologies|model-codebases-and-style)\b/,
    why: 'names a fact sheet that is not in the repository: cite docs/design.md §N',
  },
  { pattern: /\bpeer[- ]systems\b|"local IdPs"|\breference\s+"[^"\n]+"/, why: 'cites a fact sheet by its short name: cite docs/design.md §N' },
  { pattern: /\[(?:I|D|C)\d{1,2}(?:-[a-z]+)?\]/, why: 'a source key of a fact sheet ([I2], [D6] …): name the issue or page itself' },
  { pattern: /\bseeds\/[\w.-]+/, why: 'a path outside the repository' },
];

export interface Violation {
  file: string;
  line: number;
  text: string;
  why: string;
}

function walk(path: string, out: string[]): void {
  const abs = join(ROOT, path);
  let stat;
  try {
    stat = statSync(abs);
  } catch {
    return; // a listed folder that does not exist (yet) is not an error
  }
  if (stat.isDirectory()) {
    for (const name of readdirSync(abs).sort()) {
      if (SKIPPED_DIRS.has(name)) continue;
      walk(join(path, name), out);
    }
    return;
  }
  if (TEXT_EXTENSIONS.has(extname(path)) || basename(path) === 'Dockerfile') out.push(path);
}

export function scannedFiles(): string[] {
  const files: string[] = [];
  for (const entry of SCANNED) walk(entry, files);
  return files.filter((f) => f !== SELF);
}

function readText(file: string): string | undefined {
  const buf = readFileSync(join(ROOT, file));
  return buf.includes(0) ? undefined : buf.toString('utf8');
}

export function forbiddenCitations(file: string, text: string): Violation[] {
  const found: Violation[] = [];
  text.split('\n').forEach((line, i) => {
    for (const { pattern, why } of FORBIDDEN) {
      if (pattern.test(line)) found.push({ file, line: i + 1, text: line.trim().slice(0, 160), why });
    }
  });
  return found;
}

/** Section numbers of docs/design.md, from its numbered headings ("## 6. Behaviour rules", "### 6.2 Cache"). */
export function designSections(markdown: string): { sections: Set<string>; problems: string[] } {
  const sections = new Set<string>();
  const problems: string[] = [];
  const lines = markdown.split('\n');
  lines.forEach((line, i) => {
    const m = /^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s/.exec(line);
    if (!m) return;
    const n = m[1]!;
    if (sections.has(n)) problems.push(`section ${n} is numbered twice (line ${i + 1})`);
    sections.add(n);
    // Every numbered heading has a stable anchor right above it: <a id="s6.2"></a>.
    const anchor = lines.slice(0, i).reverse().find((l) => l.trim() !== '');
    if (anchor?.trim() !== `<a id="s${n}"></a>`) problems.push(`section ${n} (line ${i + 1}) has no <a id="s${n}"></a> anchor above it`);
  });
  return { sections, problems };
}

// A § not preceded by a specification's name belongs to the docs/design.md citation it follows.
const SPEC_BEFORE = /(?:RFC\s?\d{3,5}|Core(?: 1\.0)?|Discovery(?: 1\.0)?|7523bis)[\s(]*$/;
const COMMENT_LINE = /^\s*(?:\/\/|\*|\/\*|#)/;

/**
 * The docs/design.md section numbers a file cites, with their lines. A citation may list several
 * (`docs/design.md §10.1, §10.5`) and run over the following comment lines, so each line and each
 * block of comment lines that mentions docs/design.md is read as one unit.
 */
export function designCitations(text: string): { section: string; line: number }[] {
  const lines = text.split('\n');
  const units: { start: number; lines: string[] }[] = lines.map((l, i) => ({ start: i, lines: [l] }));
  for (let i = 0; i < lines.length; ) {
    if (!COMMENT_LINE.test(lines[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j < lines.length && COMMENT_LINE.test(lines[j]!)) j++;
    if (j - i > 1) units.push({ start: i, lines: lines.slice(i, j) });
    i = j;
  }
  const seen = new Set<string>();
  const cited: { section: string; line: number }[] = [];
  for (const unit of units) {
    const joined = unit.lines.join('\n');
    const first = joined.indexOf(DESIGN_DOC);
    if (first < 0) continue;
    for (const m of joined.slice(first).matchAll(/§(\d+(?:\.\d+)*)/g)) {
      const offset = first + m.index;
      if (SPEC_BEFORE.test(joined.slice(Math.max(0, offset - 24), offset))) continue;
      const line = unit.start + joined.slice(0, offset).split('\n').length;
      const key = `${line}:${m[1]}`;
      if (seen.has(key)) continue;
      seen.add(key);
      cited.push({ section: m[1]!, line });
    }
  }
  return cited;
}

describe('citations point inside the repository', () => {
  const files = scannedFiles();

  test('the scan sees the source, the tests and the docs', () => {
    for (const f of ['src/app.ts', 'test/fakes/entra-stand-in.ts', 'bench/report.ts', DESIGN_DOC, 'README.md']) {
      assert.ok(files.includes(f), `${f} is scanned`);
    }
  });

  test('the detectors recognise what they look for', () => {
    // Built from parts, so that this file itself cites nothing outside the repository.
    const section = '§';
    const bad = [
      `// the token path (DESIGN ${section}6 "Cache")`,
      `// aliases (reference ${section}1.3 [I1])`,
      '// see /work/shared/reference/entra-assertions-and-managed-identity.md',
      "// Keycloak's checks (reference peer-systems §9)",
      '// [I7] wording',
      '// seeds/powerbi-api-jwt-auth-forum-thread.txt',
    ];
    for (const line of bad) assert.ok(forbiddenCitations('x.ts', line).length > 0, `flagged: ${line}`);
    for (const line of ['// RFC 7523 §3: jti must be unique', '// docs/design.md §6.2', '// entra-docs PR #1607', 'const x = a[i1];']) {
      assert.deepEqual(forbiddenCitations('x.ts', line), [], `not flagged: ${line}`);
    }
    const cited = designCitations('// RFC 7519 §4.1.4, docs/design.md §10.2 / §10.4\n// (Entra), §13.1 (Keycloak)\nconst a = 1;\n// RFC 7515 §4.1.6 only');
    assert.deepEqual(cited.map((c) => `${c.line}:${c.section}`), ['1:10.2', '1:10.4', '2:13.1']);
  });

  test('no file cites a document or path outside the repository', () => {
    const violations = files.flatMap((f) => {
      const text = readText(f);
      return text === undefined ? [] : forbiddenCitations(f, text);
    });
    assert.deepEqual(
      violations.map((v) => `${v.file}:${v.line}: ${v.text} (${v.why})`),
      [],
      `${violations.length} citation(s) a maintainer cannot follow`,
    );
  });

  test('docs/design.md numbers its sections once each, each with a stable anchor', () => {
    const { sections, problems } = designSections(readFileSync(join(ROOT, DESIGN_DOC), 'utf8'));
    assert.deepEqual(problems, []);
    for (const n of ['1', '2', '5.4', '6.1', '6.2', '6.3', '6.4', '7', '10.3', '13.1']) assert.ok(sections.has(n), `§${n} exists`);
  });

  test('every docs/design.md §N cited anywhere exists', () => {
    const { sections } = designSections(readFileSync(join(ROOT, DESIGN_DOC), 'utf8'));
    let count = 0;
    const missing = files.flatMap((f) => {
      const text = readText(f);
      if (text === undefined || f === DESIGN_DOC) return [];
      const cited = designCitations(text);
      count += cited.length;
      return cited.filter((c) => !sections.has(c.section)).map((c) => `${f}:${c.line}: §${c.section}`);
    });
    assert.ok(count >= 50, `the code cites docs/design.md (${count} citations found)`);
    assert.deepEqual(missing, [], 'citations of sections docs/design.md does not have');
  });
});
