// The Dockerfile's properties, read from the file (no Docker engine here): stages, a pinned Node LTS
// base, production-only dependencies in the final stage, a non-root user, the exact CMD, and a
// .dockerignore that keeps dependencies, history, tests and key material out of the build context.
// That the production tree runs as the image would run it: test/integration/production-tree.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with comments dropped and backslash continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) continue;
    if (pending && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  if (pending.trim()) logical.push(pending);
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s*(.*)$/.exec(line)!;
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(from, `FROM ${args}`);
      stages.push({ base: from[1]!, name: from[2], instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${keyword} before the first FROM`);
      stages.at(-1)!.instructions.push({ keyword, args });
    }
  }
  return stages;
}

/**
 * Whether the Docker build context leaves out `path` under these .dockerignore rules: Go
 * filepath.Match globs plus `**`, a rule matching a folder excludes everything in it, `!` re-includes,
 * the last matching rule wins.
 */
function isDockerIgnored(rules: string[], path: string): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(
      '^' +
        pattern
          .replace(/^\/+|\/+$/g, '')
          .split(/(\*\*\/?|\*|\?)/)
          .map((part) => (part === '**/' ? '(?:.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
          .join('') +
        '$',
    );
  const segments = path.split('/');
  const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const re = toRegExp(negated ? rule.slice(1) : rule);
    if (prefixes.some((p) => re.test(p))) ignored = !negated;
  }
  return ignored;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const finalStage = stages.at(-1)!;
const ignoreRules = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const copies = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
const stageByName = (name: string) => stages.find((s) => s.name === name);

describe('Dockerfile', () => {
  test('is multi-stage: a build stage with the full toolchain, a final runtime stage', () => {
    assert.ok(stages.length >= 2, 'two or more stages');
    const build = stages.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));
    assert.ok(build, 'a stage runs npm run build');
    assert.ok(runs(build).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)), 'the build stage installs every dependency with npm ci');
    assert.notEqual(build, finalStage, 'the build does not happen in the final stage');
    assert.ok(copies(finalStage).some((c) => new RegExp(`--from=${build.name}\\b.*\\bdist\\b`).test(c)), 'dist/ comes from the build stage');
  });

  test('every stage is on the same Node LTS slim image, pinned to an exact release', () => {
    const bases = new Set(stages.map((s) => s.base));
    assert.equal(bases.size, 1, `one base image, got ${[...bases].join(', ')}`);
    const base = [...bases][0]!;
    const pinned = /^node:(\d+)\.(\d+)\.(\d+)-([a-z]+)-slim(@sha256:[0-9a-f]{64})?$/.exec(base);
    assert.ok(pinned, `${base}: node:<major>.<minor>.<patch>-<debian>-slim, no floating tag`);
    assert.doesNotMatch(base, /latest|lts|current/);
    const major = Number(pinned[1]);
    assert.equal(major % 2, 0, 'an even major: only those become LTS');
    const engines = /^>=(\d+)\.(\d+)$/.exec(packageJson.engines.node);
    assert.ok(engines, 'engines.node is >=X.Y');
    assert.ok(major > Number(engines[1]) || (major === Number(engines[1]) && Number(pinned[2]) >= Number(engines[2])), `node ${major} satisfies engines ${packageJson.engines.node}`);
  });

  test('the final stage has production dependencies only', () => {
    const nodeModules = copies(finalStage).filter((c) => /\bnode_modules\b/.test(c));
    assert.equal(nodeModules.length, 1, 'node_modules is copied once into the final stage');
    const source = /--from=(\S+)/.exec(nodeModules[0]!)?.[1];
    assert.ok(source, 'node_modules comes from another stage');
    const depsStage = stageByName(source);
    assert.ok(depsStage, `stage ${source} exists`);
    const installs = runs(depsStage).filter((r) => /\bnpm (ci|install|i|prune)\b/.test(r));
    assert.ok(installs.length > 0, `${source} installs dependencies`);
    for (const r of installs) assert.match(r, /--omit=dev/, `production-only install in ${source}: ${r}`);
    assert.deepEqual(runs(finalStage).filter((r) => /\bnpm\b/.test(r)), [], 'no npm install in the final stage');
    for (const c of copies(finalStage)) {
      const sources = c.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1);
      for (const s of sources) assert.ok(!['.', './', 'src', 'src/', 'test', 'test/'].includes(s), `the final stage copies no sources: COPY ${c}`);
    }
  });

  test('runs as a non-root user, in production mode, on port 8080, with the exact CMD', () => {
    const users = finalStage.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args);
    assert.ok(users.length > 0, 'USER in the final stage');
    const user = users.at(-1)!.split(':')[0]!;
    assert.ok(user === 'node' || (/^\d+$/.test(user) && Number(user) !== 0), `non-root user, got ${user}`);
    const cmds = finalStage.instructions.filter((i) => i.keyword === 'CMD');
    assert.equal(cmds.length, 1);
    assert.deepEqual(JSON.parse(cmds[0]!.args), ['node', 'dist/main.js'], 'exec form, no npm start, no shell');
    assert.equal(finalStage.instructions.filter((i) => i.keyword === 'ENTRYPOINT').length, 0);
    const env = finalStage.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.args);
    assert.ok(env.some((e) => /\bNODE_ENV[= ]production\b/.test(e)), 'NODE_ENV=production');
    assert.ok(finalStage.instructions.some((i) => i.keyword === 'EXPOSE' && /^8080(\/tcp)?$/.test(i.args)), 'EXPOSE 8080');
    assert.ok(finalStage.instructions.some((i) => i.keyword === 'COPY' && /\bpackage\.json\b/.test(i.args)), 'package.json ("type": "module") is in the image');
  });

  test('carries no secrets and writes nothing at run time', () => {
    for (const stage of stages) {
      for (const i of stage.instructions) {
        if (i.keyword === 'ARG' || i.keyword === 'ENV') assert.doesNotMatch(i.args, /(TOKEN|SECRET|PASSWORD|PASSPHRASE|API_?KEY|PRIVATE)/i, `${i.keyword} ${i.args}`);
        if (i.keyword === 'COPY' || i.keyword === 'ADD') assert.doesNotMatch(i.args, /\.(env|pem|key|pfx|p12)\b|certs/, `${i.keyword} ${i.args}`);
        assert.notEqual(i.keyword, 'ADD', 'COPY, not ADD (no remote URLs or archives)');
      }
    }
    assert.equal(finalStage.instructions.filter((i) => i.keyword === 'VOLUME').length, 0, 'no VOLUME: the app needs no writable path but /tmp');
  });

  test('.dockerignore keeps dependencies, history, tests and key material out of the context', () => {
    for (const path of ['node_modules/express/index.js', 'src/node_modules/x.js', '.git/HEAD', 'dist/main.js', 'test/unit/config.test.ts', 'certs/dev.key', 'certs/dev.crt', 'src/secret.pem', 'a/b/client.pfx', 'x.p12', '.env', '.env.local', 'scratch/t.ts', '.tools/bin/helm', 'coverage/lcov.info']) {
      assert.ok(isDockerIgnored(ignoreRules, path), `${path} is excluded`);
    }
    const needed = stages.flatMap((s) =>
      copies(s)
        .filter((c) => !c.includes('--from='))
        .flatMap((c) => c.replace(/--\S+/g, '').trim().split(/\s+/).slice(0, -1)),
    );
    assert.ok(needed.includes('src'), 'the build copies src');
    for (const path of [...needed, 'src/main.ts', 'src/config/schema.ts']) {
      assert.ok(!isDockerIgnored(ignoreRules, path), `${path} is in the build context`);
    }
  });

  test('the .dockerignore matcher follows Docker rules', () => {
    assert.ok(isDockerIgnored(['node_modules'], 'node_modules/a/b'));
    assert.ok(!isDockerIgnored(['node_modules'], 'src/node_modules/a'));
    assert.ok(isDockerIgnored(['**/node_modules'], 'src/node_modules/a'));
    assert.ok(isDockerIgnored(['**/*.key'], 'dev.key'));
    assert.ok(!isDockerIgnored(['*.md', '!README.md'], 'README.md'));
    assert.ok(isDockerIgnored(['*.md', '!README.md'], 'CHANGES.md'));
  });
});
