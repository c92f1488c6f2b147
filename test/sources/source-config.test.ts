import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, loadConfig, type SourceConfig } from '../../src/app/config.js';
import { presetExpression } from '../../src/sources/index.js';

const HEAD = `id: 0f6b5d0e-8a43-4c1f-9a44-2f7c1a0b9c11
alias: sample
title: Sample
sources:
`;

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Writes one collection file whose sources are `sources` (YAML list items) and loads it. */
function load(sources: string): SourceConfig[] {
  const dir = mkdtempSync(join(tmpdir(), 'feedhub-source-config-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'collections'));
  writeFileSync(join(dir, 'list.csv'), 'ip\n192.0.2.1\n');
  writeFileSync(join(dir, 'collections', 'a.yaml'), HEAD + sources);
  const config = loadConfig({ FEEDHUB_COLLECTIONS_DIR: join(dir, 'collections') }, dir);
  return config.collections[0]!.sources;
}

function problemsOf(sources: string): string[] {
  let caught: unknown;
  try {
    load(sources);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems;
}

describe('csv source config', () => {
  test('resolves defaults', () => {
    const [source] = load(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    columns: { ip: ipv4 }
`);
    expect(source!.kind).toBe('csv');
    expect(source!.csv).toEqual({
      delimiter: ',',
      comment: '#',
      header: true,
      fields: undefined,
      columns: [{ column: 'ip', valueType: 'ipv4' }],
      skip: [],
    });
  });

  test('resolves every key', () => {
    const [source] = load(`  - id: feodo
    kind: csv
    url: http://127.0.0.1:9/list.tsv
    interval: 1h
    delimiter: "\\t"
    comment: "//"
    fields: [seen, ip, status, link]
    columns: { ip: auto, "4": url }
    skip:
      - { column: status, equals: offline }
      - { column: 1, matches: "^2019-" }
`);
    expect(source!.csv).toEqual({
      delimiter: '\t',
      comment: '//',
      header: false,
      fields: ['seen', 'ip', 'status', 'link'],
      columns: [
        { column: 4, valueType: 'url' },
        { column: 'ip', valueType: 'auto' },
      ],
      skip: [
        { column: 'status', equals: 'offline', matches: undefined },
        { column: 1, equals: undefined, matches: '^2019-' },
      ],
    });
  });

  test('single-quoted tab delimiter', () => {
    const [source] = load(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    delimiter: '\\t'
    columns: { ip: ipv4 }
`);
    expect(source!.csv?.delimiter).toBe('\t');
  });

  test('unknown key rejected', () => {
    const problems = problemsOf(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    columns: { ip: ipv4 }
    attribute: { first_seen: firstSeen }
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /:10:\d+ \/sources\/0: unknown key "attribute"; remove it or fix its spelling$/,
      ),
    ]);
  });

  test('attribute columns read', () => {
    const [source] = load(`  - id: threatfox
    kind: csv
    path: ../list.csv
    interval: 1h
    columns: { ioc: auto }
    attributes: { first_seen_utc: firstSeen, 3: confidence, tags: tags }
`);
    expect(source!.csv?.attributes).toEqual([
      { column: 3, kind: 'confidence' },
      { column: 'first_seen_utc', kind: 'firstSeen' },
      { column: 'tags', kind: 'tags' },
    ]);
  });

  test('attribute kind unknown', () => {
    const problems = problemsOf(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    columns: { ip: ipv4 }
    attributes: { first_seen: first_seen_utc }
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/attributes\/first_seen: must be one of "firstSeen", .* \(value "first_seen_utc"\)$/,
      ),
    ]);
  });

  test('bad values named', () => {
    const problems = problemsOf(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    delimiter: "ab"
    header: false
    columns: { dst_ip: ipv4, "3": hostname }
    skip: { column: status, equals: offline, matches: "x" }
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/columns\/3: must be one of "auto", "ipv4", .* \(value "hostname"\)$/,
      ),
    ]);

    const semantic = problemsOf(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    delimiter: "ab"
    header: false
    columns: { dst_ip: ipv4 }
    skip: { column: status, equals: offline, matches: "(a)\\\\1" }
`);
    const where = /\/sources\/0/.source;
    expect(semantic).toEqual([
      expect.stringMatching(
        new RegExp(`${where}/delimiter: "ab" is not one character; use one such as`),
      ),
      expect.stringMatching(
        new RegExp(
          `${where}/columns/dst_ip: column "dst_ip" is a name, but header is false and no fields name the columns; set header: true, list fields, or use a 1-based position$`,
        ),
      ),
      expect.stringMatching(new RegExp(`${where}/skip/column: column "status" is a name`)),
      expect.stringMatching(
        new RegExp(`${where}/skip: set exactly one of equals .* or matches .*$`),
      ),
      expect.stringMatching(new RegExp(`${where}/skip/matches: "\\(a\\)\\\\\\\\1" cannot run`)),
    ]);
  });

  test('column not in fields', () => {
    const problems = problemsOf(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
    fields: [seen, ip]
    columns: { dst_ip: ipv4 }
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/columns\/dst_ip: column "dst_ip" is not one of fields \(seen, ip\); fix the name or use a 1-based position$/,
      ),
    ]);
  });

  test('columns required', () => {
    const problems = problemsOf(`  - id: feodo
    kind: csv
    path: ../list.csv
    interval: 1h
`);
    expect(problems).toEqual([
      expect.stringMatching(/\/sources\/0: must have required property 'columns'$/),
    ]);
  });
});

describe('json source config', () => {
  test('preset with filters', () => {
    const [source] = load(`  - id: aws
    kind: json
    url: http://127.0.0.1:9/ip-ranges.json
    interval: 1d
    preset: aws-ip-ranges
    service: [EC2]
    region: [eu-west-1, GLOBAL]
`);
    expect(source!.json).toEqual({
      format: 'document',
      expression: presetExpression('aws-ip-ranges', {
        service: ['EC2'],
        region: ['eu-west-1', 'GLOBAL'],
      }),
    });
    expect(source!.valueType).toBe('auto');
  });

  test('expression with value', () => {
    const [source] = load(`  - id: feed
    kind: json
    path: ../list.csv
    interval: 1h
    format: lines
    expression: "data[?confidence > \`50\`]"
    value: indicator
    valueType: url
`);
    expect(source!.json).toEqual({
      format: 'lines',
      expression: 'data[?confidence > `50`]',
      value: 'indicator',
    });
    expect(source!.valueType).toBe('url');
  });

  test('elements with a path', () => {
    const [source] = load(`  - id: export
    kind: json
    path: ../list.csv
    interval: 1h
    format: elements
    elements: data.items
    expression: indicator
`);
    expect(source!.json).toEqual({
      format: 'elements',
      elements: 'data.items',
      expression: 'indicator',
    });
  });

  test('elements default to the top', () => {
    const [source] = load(`  - id: export
    kind: json
    path: ../list.csv
    interval: 1h
    format: elements
    expression: indicator
`);
    expect(source!.json?.elements).toBe('@');
  });

  test('elements problems named', () => {
    const problems = problemsOf(`  - id: a
    kind: json
    path: ../list.csv
    interval: 1h
    elements: data.items
    expression: indicator
  - id: b
    kind: json
    path: ../list.csv
    interval: 1h
    format: elements
    elements: data..items
    expression: indicator
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/elements: elements applies only to format elements; set format: elements or remove elements$/,
      ),
      expect.stringMatching(/\/sources\/1\/elements: "data..items" is not an element path: /),
    ]);
  });

  test('preset problems named', () => {
    const problems = problemsOf(`  - id: gcp
    kind: json
    url: http://127.0.0.1:9/cloud.json
    interval: 1d
    preset: google-cloud
    region: [us-east-1]
    expression: prefixes
    value: ipv4Prefix
    format: lines
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/region: region applies only to preset aws-ip-ranges or azure-service-tags, not google-cloud; remove it$/,
      ),
      expect.stringMatching(/\/sources\/0\/expression: set either preset or expression, not both/),
      expect.stringMatching(/\/sources\/0\/value: the preset google-cloud picks its values itself/),
      expect.stringMatching(/\/sources\/0\/format: the preset google-cloud reads a document/),
    ]);
  });

  test('invalid expression named', () => {
    const problems = problemsOf(`  - id: feed
    kind: json
    path: ../list.csv
    interval: 1h
    expression: "data[?"
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/expression: "data\[\?" is not a valid JMESPath expression: /,
      ),
    ]);
  });

  test('expression or preset required', () => {
    const problems = problemsOf(`  - id: feed
    kind: json
    path: ../list.csv
    interval: 1h
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0: set expression \(a JMESPath expression that yields the values\) or preset \(one of aws-ip-ranges, /,
      ),
    ]);
  });

  test('unknown preset rejected', () => {
    const problems = problemsOf(`  - id: feed
    kind: json
    path: ../list.csv
    interval: 1h
    preset: azure
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /\/sources\/0\/preset: must be one of "aws-ip-ranges", .* \(value "azure"\)$/,
      ),
    ]);
  });

  test('unknown kind lists kinds', () => {
    const problems = problemsOf(`  - id: feed
    kind: xml
    path: ../list.csv
    interval: 1h
`);
    expect(problems).toEqual([
      expect.stringMatching(
        /:6:11 \/sources\/0: kind must be one of "text-list", "csv", "json", "stix-bundle", "misp-feed", "taxii21", "directory" \(value "xml"\)$/,
      ),
    ]);
  });
});
