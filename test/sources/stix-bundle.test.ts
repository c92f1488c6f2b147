import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import pino from 'pino';

import {
  SourceRejectedError,
  type ReadResult,
  type SourceSettings,
} from '../../src/sources/index.js';
import {
  BundleSyntaxError,
  judgeBundle,
  parseStixBundle,
  stixBundleKind,
  upgradeObject,
} from '../../src/sources/stix-bundle.js';
import { FeedServer } from '../helpers/feed-server.js';

const STIX_FIXTURES = new URL('../fixtures/stix/', import.meta.url);

function fixture(path: string): Buffer {
  return readFileSync(new URL(path, STIX_FIXTURES));
}

/** Yields a body in pieces of `size` bytes, so that tokens straddle chunk boundaries. */
async function* inChunks(body: Buffer, size: number): AsyncIterable<Buffer> {
  for (let start = 0; start < body.length; start += size) {
    yield body.subarray(start, start + size);
  }
}

function indicator21(id: string, pattern: string, extra: Record<string, unknown> = {}): object {
  return {
    type: 'indicator',
    spec_version: '2.1',
    id: `indicator--${id}`,
    created: '2024-01-02T03:04:05.678Z',
    modified: '2024-01-02T03:04:05.678Z',
    pattern,
    pattern_type: 'stix',
    valid_from: '2024-01-02T03:04:05Z',
    ...extra,
  };
}

function bundle(objects: unknown[]): string {
  return JSON.stringify({
    type: 'bundle',
    id: 'bundle--5d0092c5-5f74-4287-9642-33f4c354e56d',
    objects,
  });
}

const ID_A = '11111111-1111-4111-8111-111111111111';
const ID_B = '22222222-2222-4222-8222-222222222222';
const ID_C = '33333333-3333-4333-8333-333333333333';

describe('parseStixBundle on OASIS examples', () => {
  test.each([
    ['apt1.json', 76, 10],
    ['poisonivy.json', 155, 4],
    ['indicator-for-malicious-url.json', 3, 1],
    ['malware-indicator-for-file-hash.json', 3, 1],
    ['using-marking-definitions.json', 4, 1],
  ])('%s counts', async (name, objects, entries) => {
    const result = await parseStixBundle(fixture(`oasis/${name}`));
    expect(result.shape).toBe('bundle');
    expect(result.stats.objectsFound).toBe(objects);
    expect(result.stats.valid).toBe(objects);
    expect(result.stats.invalid).toBe(0);
    expect(result.stats.upgraded).toBe(0);
    expect(result.objects).toHaveLength(objects);
    expect(result.entries).toHaveLength(entries);
  });

  test('objects keep exact text', async () => {
    const body = fixture('oasis/apt1.json');
    const text = body.toString('utf8');
    const parsed = JSON.parse(text) as { objects: { id: string }[] };
    const result = await parseStixBundle(body);
    result.objects.forEach((object, index) => {
      expect(text.includes(object.json)).toBe(true);
      expect(JSON.parse(object.json)).toEqual(parsed.objects[index]);
      expect(object.specVersion).toBe('2.1');
    });
  });

  test('indicator values', async () => {
    const url = await parseStixBundle(fixture('oasis/indicator-for-malicious-url.json'));
    expect(url.entries).toEqual([
      {
        type: 'url',
        value: 'http://x4z9arb.cn/4712/',
        attributes: {
          description:
            'This organized threat actor group operates to create profit from all types of crime.',
        },
      },
    ]);

    const hash = await parseStixBundle(fixture('oasis/malware-indicator-for-file-hash.json'));
    expect(hash.entries).toEqual([
      {
        type: 'sha256',
        value: 'ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c',
        attributes: {
          description: 'This file hash indicates that a sample of Poison Ivy is present.',
        },
      },
    ]);

    const apt1 = await parseStixBundle(fixture('oasis/apt1.json'));
    const apt1Values = apt1.entries.map(({ type, value }) => ({ type, value }));
    expect(apt1Values).toContainEqual({ type: 'ipv4-cidr', value: '223.166.0.0/15' });
    expect(apt1Values).toContainEqual({ type: 'domain', value: 'hugesoft.org' });
    expect(apt1Values).toContainEqual({ type: 'md5', value: '001dd76872d80801692ff942308c64e6' });
  });

  test('indicator attributes', async () => {
    const marked = indicator21(ID_A, "[ipv4-addr:value = '198.51.100.77']", {
      confidence: 85,
      labels: ['c2'],
      object_marking_refs: [
        'marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da',
        'marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421',
      ],
    });
    const result = await parseStixBundle(bundle([marked]));

    expect(result.entries).toEqual([
      {
        type: 'ipv4',
        value: '198.51.100.77',
        attributes: { confidence: 85, labels: ['c2'], tlp: 'amber' },
      },
    ]);
  });

  test('small chunks same result', async () => {
    const body = fixture('oasis/poisonivy.json');
    const whole = await parseStixBundle(body);
    for (const size of [1, 7, 4096]) {
      const chunked = await parseStixBundle(inChunks(body, size));
      expect(chunked.objects).toEqual(whole.objects);
      expect(chunked.entries).toEqual(whole.entries);
    }
  });

  test('non-ASCII text kept across chunks', async () => {
    const body = fixture('oasis/apt1.json');
    const whole = await parseStixBundle(body);
    const chunked = await parseStixBundle(inChunks(body, 3));
    expect(chunked.objects.map((object) => object.json)).toEqual(
      whole.objects.map((object) => object.json),
    );
    expect(whole.objects.some((object) => /[\u0080-\uffff]/.test(object.json))).toBe(true);
  });
});

describe('parseStixBundle STIX 2.0 upgrade', () => {
  test('MITRE PRE-ATT&CK counts', async () => {
    const result = await parseStixBundle(fixture('mitre-cti-stix20/pre-attack.json'));
    expect(result.stats.objectsFound).toBe(268);
    expect(result.stats.valid).toBe(268);
    expect(result.stats.upgraded).toBe(268);
    expect(result.stats.invalid).toBe(0);
    expect(result.entries).toEqual([]);
    const types = new Set(result.objects.map((object) => object.type));
    expect(types).toEqual(
      new Set([
        'attack-pattern',
        'relationship',
        'x-mitre-tactic',
        'intrusion-set',
        'identity',
        'x-mitre-matrix',
        'marking-definition',
      ]),
    );
    for (const object of result.objects) expect(object.specVersion).toBe('2.1');
  });

  test('marking created gets milliseconds', async () => {
    const result = await parseStixBundle(fixture('mitre-cti-stix20/pre-attack.json'));
    const marking = result.objects.find((object) => object.type === 'marking-definition');
    const body = JSON.parse(marking!.json) as Record<string, unknown>;
    expect(body.id).toBe('marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168');
    expect(body.created).toBe('2017-06-01T00:00:00.000Z');
    expect(body.spec_version).toBe('2.1');
    expect(body.definition_type).toBe('statement');
    expect(marking!.version).toBe('2017-06-01T00:00:00.000000Z');
  });

  test('MITRE malware properties', async () => {
    const result = await parseStixBundle(
      fixture('mitre-cti-stix20/malware--007b44b6-e4c5-480b-b5b9-56f2081b1b7b.json'),
    );
    expect(result.stats.upgraded).toBe(1);
    const stored = result.objects[0]!;
    const malware = JSON.parse(stored.json) as Record<string, unknown>;
    expect(Object.keys(malware).slice(0, 3)).toEqual(['type', 'spec_version', 'id']);
    expect(malware.spec_version).toBe('2.1');
    expect(malware.id).toBe('malware--007b44b6-e4c5-480b-b5b9-56f2081b1b7b');
    expect(malware.malware_types).toEqual(['malware']);
    expect(malware).not.toHaveProperty('labels');
    expect(malware.is_family).toBe(true);
    expect(malware.created).toBe('2017-05-31T21:32:40.801Z');
    expect(malware.modified).toBe('2025-04-16T20:37:51.573Z');
    expect(malware.created_by_ref).toBe('identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5');
    expect(malware.object_marking_refs).toEqual([
      'marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168',
    ]);
    expect(malware.x_mitre_aliases).toEqual(['HDoor', 'Custom HDoor']);
    expect(stored.version).toBe('2025-04-16T20:37:51.573000Z');
  });

  test('indicator labels and pattern', async () => {
    const body = JSON.stringify({
      type: 'bundle',
      id: 'bundle--5d0092c5-5f74-4287-9642-33f4c354e56d',
      spec_version: '2.0',
      objects: [
        {
          type: 'indicator',
          id: `indicator--${ID_A}`,
          created: '2016-04-06T20:03:48.000Z',
          modified: '2016-04-06T20:03:48.000Z',
          labels: ['malicious-activity'],
          pattern: "[ipv4-addr:value = '198.51.100.3']",
          valid_from: '2016-01-01T00:00:00Z',
        },
      ],
    });
    const result = await parseStixBundle(body);
    const indicator = JSON.parse(result.objects[0]!.json) as Record<string, unknown>;
    expect(indicator.indicator_types).toEqual(['malicious-activity']);
    expect(indicator).not.toHaveProperty('labels');
    expect(indicator.pattern_type).toBe('stix');
    expect(indicator.valid_from).toBe('2016-01-01T00:00:00Z');
    expect(result.entries).toEqual([{ type: 'ipv4', value: '198.51.100.3' }]);
  });

  test('upgradeObject leaves 2.1 and SCOs', () => {
    expect(upgradeObject({ type: 'malware', spec_version: '2.1' })).toEqual({ kind: 'none' });
    expect(upgradeObject({ type: 'ipv4-addr', value: '192.0.2.1' })).toEqual({ kind: 'none' });
    expect(upgradeObject({ type: 'malware', spec_version: '3.0' })).toEqual({
      kind: 'unsupported',
      reason: 'spec_version "3.0" is not supported, expected "2.0" or "2.1"',
    });
  });

  test('upgradeObject keeps existing types property', () => {
    const upgrade = upgradeObject({
      type: 'tool',
      labels: ['generic'],
      tool_types: ['remote-access'],
    });
    expect(upgrade).toEqual({
      kind: 'upgraded',
      object: {
        type: 'tool',
        spec_version: '2.1',
        labels: ['generic'],
        tool_types: ['remote-access'],
      },
    });
  });
});

describe('parseStixBundle shapes', () => {
  test('bare array', async () => {
    const body = JSON.stringify([
      indicator21(ID_A, "[domain-name:value = 'example.com']"),
      indicator21(ID_B, "[url:value = 'http://example.com/a']"),
    ]);
    const result = await parseStixBundle(body);
    expect(result.shape).toBe('array');
    expect(result.stats.valid).toBe(2);
    expect(result.entries).toEqual([
      { type: 'domain', value: 'example.com' },
      { type: 'url', value: 'http://example.com/a' },
    ]);
  });

  test('single object', async () => {
    const text = JSON.stringify(indicator21(ID_A, "[ipv4-addr:value = '192.0.2.9']"), null, 2);
    const result = await parseStixBundle(`\n${text}\n`);
    expect(result.shape).toBe('object');
    expect(result.objects).toHaveLength(1);
    expect(result.objects[0]!.json).toBe(text);
    expect(result.entries).toEqual([{ type: 'ipv4', value: '192.0.2.9' }]);
  });

  test('brackets and escapes in strings', async () => {
    const tricky = indicator21(ID_A, "[url:value = 'http://example.com/a\\'b']", {
      description: 'ends with "}]" and a backslash \\',
    });
    const text = JSON.stringify(tricky);
    for (const size of [1, 2, 5]) {
      const result = await parseStixBundle(inChunks(Buffer.from(`[${text},${text}]`), size));
      expect(result.objects.map((object) => object.json)).toEqual([text]);
      expect(result.stats.duplicates).toBe(1);
      expect(result.entries).toEqual([
        {
          type: 'url',
          value: "http://example.com/a'b",
          attributes: { description: 'ends with "}]" and a backslash \\' },
        },
      ]);
    }
  });

  test('byte order mark skipped', async () => {
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(bundle([indicator21(ID_A, "[ipv4-addr:value = '192.0.2.9']")])),
    ]);
    const result = await parseStixBundle(body);
    expect(result.stats.valid).toBe(1);
  });

  test('objects before bundle type', async () => {
    const body = `{"objects": [${JSON.stringify(indicator21(ID_A, "[ipv4-addr:value = '192.0.2.9']"))}], "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "type": "bundle"}`;
    const result = await parseStixBundle(body);
    expect(result.shape).toBe('bundle');
    expect(result.stats.valid).toBe(1);
  });

  test.each([
    ['HTML page', '<!DOCTYPE html><html><body>Blocked</body></html>', 'the body is not JSON'],
    ['empty body', '', 'the body is empty'],
    ['truncated', '{"type": "bundle", "objects": [{"type": "indicator"', 'truncated'],
    ['trailing text', '[]\nnot json', 'expected the end of the document'],
    ['missing comma', '[{"a": 1} {"b": 2}]', 'expected "," or "]"'],
    ['other type with objects', '{"type": "report", "objects": []}', 'expected "bundle"'],
    ['object without type', '{"id": "x"}', 'has no type'],
  ])('%s rejected', async (_, body, message) => {
    await expect(parseStixBundle(body)).rejects.toThrow(BundleSyntaxError);
    await expect(parseStixBundle(body)).rejects.toThrow(message);
  });

  test('truncated OASIS bundle rejected', async () => {
    const body = fixture('oasis/poisonivy.json');
    const cut = body.subarray(0, Math.floor(body.length / 2));
    await expect(parseStixBundle(inChunks(cut, 1000))).rejects.toThrow(
      /ends early after \d+ bytes/,
    );
  });
});

describe('parseStixBundle invalid objects', () => {
  test('counted with examples', async () => {
    const body = bundle([
      indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']"),
      42,
      { ...indicator21(ID_B, "[ipv4-addr:value = '192.0.2.2']"), created: '2024-01-02T03:04:05Z' },
      { type: 'malware', spec_version: '3.0', id: `malware--${ID_C}` },
      { type: 'indicator', spec_version: '2.1', id: 'indicator--NOT-A-UUID' },
    ]);
    const result = await parseStixBundle(body);
    expect(result.stats.objectsFound).toBe(5);
    expect(result.stats.valid).toBe(1);
    expect(result.stats.invalid).toBe(4);
    expect(result.objects.map((object) => object.id)).toEqual([`indicator--${ID_A}`]);
    expect(result.entries).toEqual([{ type: 'ipv4', value: '192.0.2.1' }]);

    const examples = result.stats.invalidExamples;
    expect(examples.map((example) => example.line)).toEqual([2, 3, 4, 5]);
    expect(examples[0]!.reason).toBe('not a JSON object');
    expect(examples[1]!.reason).toMatch(/^invalid STIX 2\.1 object: \/created must match/);
    expect(examples[2]!.reason).toBe(
      'spec_version "3.0" is not supported, expected "2.0" or "2.1"',
    );
    expect(examples[3]!.reason).toMatch(/^invalid STIX 2\.1 object: /);
  });

  test('duplicate version counted once', async () => {
    const object = indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']");
    const result = await parseStixBundle(bundle([object, object]));
    expect(result.stats.valid).toBe(1);
    expect(result.stats.duplicates).toBe(1);
    expect(result.objects).toHaveLength(1);
  });

  test('judgeBundle rules', () => {
    const stats = {
      objectsFound: 3,
      valid: 1,
      invalid: 2,
      duplicates: 0,
      upgraded: 0,
      invalidExamples: [{ line: 1, text: '42', reason: 'not a JSON object' }],
    };
    expect(judgeBundle(stats)).toBe(
      '2 of its 3 objects are invalid STIX, more than the valid ones',
    );
    expect(judgeBundle({ ...stats, valid: 0, invalid: 3 })).toBe(
      'none of its 3 objects is valid STIX (first: not a JSON object)',
    );
    expect(judgeBundle({ ...stats, objectsFound: 0, valid: 0, invalid: 0 })).toBe(
      'the bundle contains no objects',
    );
    expect(judgeBundle({ ...stats, valid: 2, invalid: 1 })).toBeUndefined();
  });
});

describe('parseStixBundle indicator entries', () => {
  test('complex patterns stay objects', async () => {
    const result = await parseStixBundle(
      bundle([
        indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1'] OR [ipv4-addr:value = '192.0.2.2']"),
        indicator21(ID_B, "[file:name = 'evil.exe']"),
        indicator21(ID_C, "[domain-name:value = 'example.org'] WITHIN 60 SECONDS"),
      ]),
    );
    expect(result.stats.valid).toBe(3);
    expect(result.entries).toEqual([]);
  });

  test('revoked and expired skipped', async () => {
    const result = await parseStixBundle(
      bundle([
        indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']", { revoked: true }),
        indicator21(ID_B, "[ipv4-addr:value = '192.0.2.2']", {
          valid_until: '2024-02-01T00:00:00Z',
        }),
        indicator21(ID_C, "[ipv4-addr:value = '192.0.2.3']", { pattern_type: 'sigma' }),
      ]),
    );
    expect(result.stats.valid).toBe(3);
    expect(result.entries).toEqual([]);
  });

  test('newest version decides', async () => {
    const older = indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']");
    const newer = indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']", {
      modified: '2024-03-01T00:00:00.000Z',
      revoked: true,
    });
    const result = await parseStixBundle(bundle([newer, older]));
    expect(result.objects).toHaveLength(2);
    expect(result.entries).toEqual([]);
  });

  test('same value once', async () => {
    const result = await parseStixBundle(
      bundle([
        indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']"),
        indicator21(ID_B, "[ipv4-addr:value = '192.0.2.1']"),
      ]),
    );
    expect(result.entries).toEqual([{ type: 'ipv4', value: '192.0.2.1' }]);
  });
});

describe('parseStixBundle generated bundle', () => {
  test('20000 indicators streamed', async () => {
    const count = 20000;
    async function* generate(): AsyncIterable<Buffer> {
      yield Buffer.from(
        '{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [',
      );
      for (let index = 0; index < count; index += 1) {
        const uuid = `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;
        const address = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
        const object = indicator21(uuid, `[ipv4-addr:value = '${address}']`);
        yield Buffer.from(`${index === 0 ? '' : ','}\n  ${JSON.stringify(object)}`);
      }
      yield Buffer.from('\n]}');
    }
    const result = await parseStixBundle(generate());
    expect(result.stats.valid).toBe(count);
    expect(result.entries).toHaveLength(count);
    expect(result.entries[count - 1]).toEqual({ type: 'ipv4', value: '10.0.78.31' });
  });
});

describe('stix-bundle source kind', () => {
  const server = new FeedServer();
  const logger = pino({ level: 'silent' });
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  function source(path: string): SourceSettings {
    return {
      id: 'oasis',
      name: 'OASIS examples',
      kind: 'stix-bundle',
      url: server.url(path),
      valueType: 'auto',
      timeoutMs: 5000,
      maxBytes: 1 << 20,
    };
  }

  function read(path: string, extra: { etag?: string; unchangedDigest?: string } = {}) {
    return stixBundleKind.read({
      source: source(path),
      userAgent: 'feedhub-test',
      logger,
      previous: extra.etag ? { collectionId: 'c', sourceId: 'oasis', etag: extra.etag } : undefined,
      unchangedDigest: extra.unchangedDigest,
    });
  }

  test('reads a gzipped bundle', async () => {
    const body = fixture('oasis/poisonivy.json');
    server.set('/poisonivy.json.gz', {
      kind: 'body',
      body: gzipSync(body),
      contentType: 'application/gzip',
    });
    const result = await read('/poisonivy.json.gz');
    expect(result.kind).toBe('data');
    if (result.kind !== 'data') return;
    expect(result.complete).toBe(true);
    expect(result.objects).toHaveLength(155);
    expect(result.entries).toHaveLength(4);
    expect(result.stats.valid).toBe(155);
    expect(result.stats.bytes).toBe(body.length);
    expect(result.bodyDigest).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('conditional GET and unchanged body', async () => {
    server.set('/apt1.json', {
      kind: 'body',
      body: fixture('oasis/apt1.json'),
      contentType: 'application/stix+json',
    });
    const first = await read('/apt1.json');
    if (first.kind !== 'data') throw new Error(`expected data, got ${first.kind}`);
    expect(first.etag).toBeDefined();

    const second = await read('/apt1.json', { etag: first.etag });
    expect(second.kind).toBe('not-modified');

    const third: ReadResult = await read('/apt1.json', { unchangedDigest: first.bodyDigest });
    expect(third.kind).toBe('unchanged');
    if (third.kind !== 'unchanged') return;
    const parsed = await third.parse();
    expect(parsed.kind).toBe('data');
    if (parsed.kind === 'data') expect(parsed.objects).toHaveLength(76);
  });

  test('HTML body rejected', async () => {
    server.set('/login', {
      kind: 'body',
      body: '<html><head><title>Sign in</title></head></html>',
      contentType: 'text/html',
    });
    await expect(read('/login')).rejects.toThrow(SourceRejectedError);
    await expect(read('/login')).rejects.toThrow(/the body is not JSON: it starts with "<html>/);
  });

  test('truncated body rejected', async () => {
    const body = fixture('oasis/apt1.json');
    server.set('/cut.json', { kind: 'body', body: body.subarray(0, 20000) });
    await expect(read('/cut.json')).rejects.toThrow(SourceRejectedError);
  });

  test('empty bundle rejected', async () => {
    server.set('/empty.json', { kind: 'body', body: bundle([]) });
    await expect(read('/empty.json')).rejects.toThrow('the bundle contains no objects');
  });

  test('mostly invalid rejected', async () => {
    server.set('/bad.json', {
      kind: 'body',
      body: bundle([1, 2, indicator21(ID_A, "[ipv4-addr:value = '192.0.2.1']")]),
    });
    await expect(read('/bad.json')).rejects.toThrow(
      '2 of its 3 objects are invalid STIX, more than the valid ones',
    );
  });
});
