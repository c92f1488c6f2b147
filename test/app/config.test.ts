import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, durationSeconds, loadConfig } from '../../src/app/config.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function collectionsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-config-'));
  mkdirSync(join(dir, 'collections'));
  writeFileSync(join(dir, 'list.txt'), '198.51.100.7\n');
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, 'collections', name), text);
  }
  return dir;
}

function problemsOf(run: () => unknown): string[] {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems;
}

const GOOD = `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: sample
title: Sample
sources:
  - id: list
    kind: text-list
    path: ../list.txt
    interval: 15m
`;

describe('loadConfig', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const env = (dir: string, extra: Record<string, string> = {}) => ({
    FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections'),
    ...extra,
  });

  it('loads the sample collections of the repository', () => {
    const config = loadConfig({}, repoRoot);
    const aliases = config.collections.map((c) => c.alias);
    expect(aliases).toEqual(
      expect.arrayContaining(['feodotracker', 'ransomware-tracker', 'ipsum', 'tor-exit']),
    );
    expect(config.settings.host).toBe('127.0.0.1');
    expect(config.settings.port).toBe(8080);
    expect(config.settings.publicUrl).toBe('http://127.0.0.1:8080');
    expect(Object.isFrozen(config.settings)).toBe(true);
  });

  it('applies source defaults and resolves paths', () => {
    const dir = collectionsDir({ 'a.yaml': GOOD });
    dirs.push(dir);
    const config = loadConfig(env(dir), dir);
    const source = config.collections[0]!.sources[0]!;
    expect(source.url).toBe(`file://${join(dir, 'list.txt')}`);
    expect(source.intervalSeconds).toBe(900);
    expect(source.confidence).toBe(50);
    expect(source.tlp).toBe('clear');
    expect(source.valueType).toBe('auto');
    expect(config.collections[0]!.views.map((v) => v.name)).toEqual(['ip', 'domain', 'url']);
  });

  it('reports every problem with file, line and path', () => {
    const dir = collectionsDir({
      'a.yaml': `id: not-a-uuid
alias: Sample
title: Sample
colour: blue
sources:
  - id: list
    kind: text-list
    path: ../list.txt
    interval: 15 minutes
    confidence: 101
`,
    });
    dirs.push(dir);
    const problems = problemsOf(() => loadConfig(env(dir), dir));
    const file = join(dir, 'collections', 'a.yaml');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${file}:1:5 /id: .*"not-a-uuid"`)),
        expect.stringMatching(/:2:8 \/alias: /),
        expect.stringMatching(/:4:9 \/: unknown key "colour"/),
        expect.stringMatching(/:9:15 \/sources\/0\/interval: .*"15 minutes"/),
        expect.stringMatching(/:10:17 \/sources\/0\/confidence: .*101/),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it('rejects unknown and invalid environment settings', () => {
    const dir = collectionsDir({ 'a.yaml': GOOD });
    dirs.push(dir);
    const problems = problemsOf(() =>
      loadConfig(
        env(dir, { FEEDHUB_PORTT: '80', FEEDHUB_PORT: 'eighty', FEEDHUB_LOG_LEVEL: 'loud' }),
        dir,
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('unknown setting FEEDHUB_PORTT'),
        expect.stringContaining('FEEDHUB_PORT="eighty"'),
        expect.stringContaining('FEEDHUB_LOG_LEVEL="loud"'),
      ]),
    );
  });

  it('reads the audit retention', () => {
    const dir = collectionsDir({ 'a.yaml': GOOD });
    dirs.push(dir);
    const day = 86_400_000;
    expect(loadConfig(env(dir), dir).settings.auditRetentionMs).toBe(400 * day);
    const kept = loadConfig(env(dir, { FEEDHUB_AUDIT_RETENTION_DAYS: '0' }), dir);
    expect(kept.settings.auditRetentionMs).toBe(0);
    expect(
      problemsOf(() => loadConfig(env(dir, { FEEDHUB_AUDIT_RETENTION_DAYS: '30d' }), dir)),
    ).toEqual([expect.stringContaining('FEEDHUB_AUDIT_RETENTION_DAYS="30d"')]);
  });

  it('rejects a port above 65535', () => {
    const dir = collectionsDir({ 'a.yaml': GOOD });
    dirs.push(dir);
    expect(problemsOf(() => loadConfig(env(dir, { FEEDHUB_PORT: '70000' }), dir))).toEqual([
      expect.stringContaining('FEEDHUB_PORT=70000'),
    ]);
  });

  it('explains confidence "90" and aging soon', () => {
    const dir = collectionsDir({
      'a.yaml': `${GOOD}    confidence: "90"\n    aging: soon\n`,
    });
    dirs.push(dir);
    expect(problemsOf(() => loadConfig(env(dir), dir))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /\/sources\/0\/confidence: must be an integer from 0 to 100, or an object .*"90"/,
        ),
        expect.stringMatching(/\/sources\/0\/aging: must be never, first_seen\+DURATION .*"soon"/),
      ]),
    );
    expect(problemsOf(() => loadConfig(env(dir), dir)).join('\n')).not.toMatch(/url or path/);
  });

  it('rejects extract backreference and lookahead', () => {
    const source = (id: string, extract: string) => `  - id: ${id}
    kind: text-list
    path: ../list.txt
    extract: '${extract}'
    interval: 1h
`;
    const dir = collectionsDir({
      'a.yaml': GOOD.replace(
        /sources:\n[\s\S]*/,
        () =>
          `sources:\n${source('back', '(a)\\1')}${source('ahead', '(?=1)([0-9.]+)')}${source('nested', '(a+)+$')}`,
      ),
    });
    dirs.push(dir);
    expect(problemsOf(() => loadConfig(env(dir), dir))).toEqual([
      expect.stringMatching(/\/sources\/0\/extract: "\(a\)\\\\1" cannot run in linear time/),
      expect.stringMatching(/\/sources\/1\/extract: .* cannot run in linear time/),
    ]);
  });

  it('rejects duplicate ids, both url and path, a bad regex and a missing file', () => {
    const dir = collectionsDir({
      'a.yaml': GOOD,
      'b.yaml': `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: other
title: Other
sources:
  - id: one
    kind: text-list
    path: ../list.txt
    url: https://feeds.invalid/list.txt
    interval: 1h
  - id: two
    kind: text-list
    path: ../missing.txt
    interval: 1h
  - id: three
    kind: text-list
    path: ../list.txt
    extract: '([0-9'
    interval: 1h
  - id: four
    kind: text-list
    path: ../list.txt
    extract: '[0-9.]+'
    interval: 1h
`,
    });
    dirs.push(dir);
    const problems = problemsOf(() => loadConfig(env(dir), dir));
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/\/sources\/0: set exactly one of url or path/),
      ]),
    );
    // The schema error stops the file before the per-source checks, so fix it and look again.
    writeFileSync(
      join(dir, 'collections', 'b.yaml'),
      `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: other
title: Other
sources:
  - id: two
    kind: text-list
    path: ../missing.txt
    interval: 1h
  - id: three
    kind: text-list
    path: ../list.txt
    extract: '([0-9'
    interval: 1h
  - id: four
    kind: text-list
    path: ../list.txt
    extract: '[0-9.]+'
    interval: 1h
  - id: four
    kind: text-list
    path: ../list.txt
    interval: 1h
`,
    );
    const again = problemsOf(() => loadConfig(env(dir), dir));
    expect(again).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/\/sources\/0\/path: file .*missing\.txt not found/),
        expect.stringMatching(/\/sources\/1\/extract: .* is not a valid regular expression/),
        expect.stringMatching(/\/sources\/2\/extract: .* has no capture group/),
        expect.stringMatching(/\/sources\/3\/id: source id "four" is used twice/),
      ]),
    );
  });

  it('rejects a collection id used by two files', () => {
    const dir = collectionsDir({
      'a.yaml': GOOD,
      'b.yaml': GOOD.replace('alias: sample', 'alias: other'),
    });
    dirs.push(dir);
    expect(problemsOf(() => loadConfig(env(dir), dir))).toEqual([
      expect.stringMatching(
        /b\.yaml: collection id "0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11" is also used by .*a\.yaml/,
      ),
    ]);
  });

  it('reports YAML syntax errors with their position', () => {
    const dir = collectionsDir({ 'a.yaml': 'id: [unclosed\n' });
    dirs.push(dir);
    expect(problemsOf(() => loadConfig(env(dir), dir))[0]).toMatch(/a\.yaml:\d+:\d+: /);
  });
});

describe('durationSeconds', () => {
  it.each([
    ['30s', 30],
    ['15m', 900],
    ['1h', 3600],
    ['2d', 172800],
  ])('%s is %i seconds', (text, seconds) => {
    expect(durationSeconds(text)).toBe(seconds);
  });
});
