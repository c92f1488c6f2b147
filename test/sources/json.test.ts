import { existsSync, readFileSync } from 'node:fs';
import pino from 'pino';

import {
  compileExpression,
  judgeJson,
  parseJson,
  presetExpression,
  SOURCE_KINDS,
  SourceRejectedError,
  type JsonPreset,
  type JsonPresetOptions,
  type JsonSettings,
  type SourceSettings,
} from '../../src/sources/index.js';
import { FeedServer } from '../helpers/feed-server.js';

const HANDMADE = new URL('../fixtures/handmade/', import.meta.url);
/** Snapshots of the real AWS and Google range documents; they carry no licence, so they are not committed. */
const SHARED_FEEDS = '/work/shared/fixtures/feeds/';

function handmade(name: string): Buffer {
  return readFileSync(new URL(name, HANDMADE));
}

function document(expression: string, value?: string): JsonSettings {
  return { format: 'document', expression, ...(value === undefined ? {} : { value }) };
}

async function presetValues(
  file: Buffer | string,
  preset: JsonPreset,
  options: JsonPresetOptions = {},
): Promise<string[]> {
  const { entries, stats } = await parseJson(file, document(presetExpression(preset, options)));
  expect(judgeJson(stats)).toEqual({ ok: true });
  return entries.map((entry) => entry.value);
}

describe('parseJson document', () => {
  test('expression yields strings', async () => {
    const body = JSON.stringify({ data: { ips: ['192.0.2.1', '2001:DB8::1', 'example.com'] } });
    const { entries, stats } = await parseJson(body, document('data.ips'));
    expect(entries).toEqual([
      { type: 'ipv4', value: '192.0.2.1' },
      { type: 'ipv6', value: '2001:db8::1' },
      { type: 'domain', value: 'example.com' },
    ]);
    expect(stats.lines).toBe(1);
  });

  test('objects with value field', async () => {
    const body = JSON.stringify({
      items: [
        { indicator: 'http://example.com/a', kind: 'url' },
        { indicator: 'http://example.com/b', kind: 'url' },
        { indicator: 17, kind: 'number' },
        { kind: 'no indicator' },
      ],
    });
    const { entries, stats } = await parseJson(body, document('items', 'indicator'), 'url');
    expect(entries.map((entry) => entry.value)).toEqual([
      'http://example.com/a',
      'http://example.com/b',
    ]);
    expect(stats.invalid).toBe(1);
    expect(stats.invalidExamples[0]?.reason).toBe('field indicator is not a string');
    expect(stats.unmatched).toBe(1);
  });

  test('objects without value field', async () => {
    const body = JSON.stringify({ items: [{ ip: '192.0.2.1' }] });
    const { stats } = await parseJson(body, document('items'));
    expect(stats.invalidExamples[0]?.reason).toBe(
      'an object, not a string; set value to the field that holds the value',
    );
    expect(judgeJson(stats)).toEqual({ ok: false, reason: 'no valid values in 1 document' });
  });

  test('nested arrays explained', async () => {
    const body = JSON.stringify({ groups: [['192.0.2.1'], ['192.0.2.2']] });
    const { stats } = await parseJson(body, document('groups'));
    expect(stats.invalidExamples[0]?.reason).toBe(
      'an array, not a string; flatten it with [] in the expression',
    );
    const flattened = await parseJson(body, document('groups[]'));
    expect(flattened.stats.valid).toBe(2);
  });

  test('UTF-8 byte order mark', async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('["192.0.2.1"]')]);
    const { entries } = await parseJson(body, document('@'));
    expect(entries).toEqual([{ type: 'ipv4', value: '192.0.2.1' }]);
  });

  test('truncated document rejected', async () => {
    const text = handmade('aws-ip-ranges-sample.json').toString('utf8');
    const { stats } = await parseJson(
      text.slice(0, text.length / 2),
      document(presetExpression('aws-ip-ranges')),
    );
    expect(judgeJson(stats)).toEqual({
      ok: false,
      reason: expect.stringMatching(/^the body is not valid JSON \(/),
    });
  });

  test('expression that matches nothing', async () => {
    const { stats } = await parseJson('{"prefixes": []}', document('prefixes[].ip_prefix'));
    expect(judgeJson(stats)).toEqual({ ok: false, reason: 'no valid values in 1 document' });
    const missing = await parseJson('{"prefixes": []}', document('result'));
    expect(judgeJson(missing.stats)).toEqual({
      ok: false,
      reason:
        'expression "result" matched nothing in the document; check it against the feed\'s current format',
    });
  });

  test('expression type error', async () => {
    const { stats } = await parseJson('{"a": "x"}', document('abs(a)'));
    expect(judgeJson(stats)).toEqual({
      ok: false,
      reason: expect.stringMatching(/^expression "abs\(a\)" failed: /),
    });
  });

  test('HTML page rejected', async () => {
    const { stats } = await parseJson('<!doctype html><p>maintenance', document('@'));
    expect(judgeJson(stats)).toEqual({
      ok: false,
      reason: 'the body looks like an HTML page, not JSON',
    });
  });
});

describe('parseJson lines', () => {
  const settings: JsonSettings = { format: 'lines', expression: 'ioc' };

  test('one object per line', async () => {
    const body = [
      '{"ioc": "192.0.2.1", "first_seen": "2024-04-01"}',
      '',
      '{"ioc": "example.com"}\r',
      '{"ioc": "192.0.2.1"}',
      '{"ioc": ',
      '{"ioc": "192.0.2.9"}',
    ].join('\n');
    const { entries, stats } = await parseJson(body, settings);
    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', 'example.com', '192.0.2.9']);
    expect(stats.lines).toBe(6);
    expect(stats.blank).toBe(1);
    expect(stats.duplicates).toBe(1);
    expect(stats.invalid).toBe(1);
    expect(stats.invalidExamples[0]).toEqual(
      expect.objectContaining({ line: 5, reason: expect.stringMatching(/^not valid JSON: /) }),
    );
    expect(judgeJson(stats)).toEqual({ ok: true });
  });

  test('lines without a value count against', async () => {
    const body = '{"ioc": "192.0.2.1"}\n{"other": 1}\n{"other": 2}\n';
    const { stats } = await parseJson(body, settings);
    expect(stats.unmatched).toBe(2);
    expect(judgeJson(stats)).toEqual({
      ok: false,
      reason: '0 invalid and 2 missing of 3 values (more than half)',
    });
  });

  test('chunked input', async () => {
    const body = Buffer.from('{"ioc": "192.0.2.1"}\n{"ioc": "2001:db8::7"}\n');
    async function* bytes(): AsyncIterable<Buffer> {
      for (const byte of body) yield Buffer.from([byte]);
    }
    const { entries } = await parseJson(bytes(), settings);
    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', '2001:db8::7']);
  });
});

describe('parseJson elements', () => {
  function elements(path: string, expression: string): JsonSettings {
    return { format: 'elements', elements: path, expression };
  }

  test('AWS sample by element', async () => {
    const file = handmade('aws-ip-ranges-sample.json');
    const whole = await parseJson(file, document('prefixes[].ip_prefix'));
    const streamed = await parseJson(file, elements('prefixes', 'ip_prefix'));

    expect(streamed.entries).toEqual(whole.entries);
    expect(streamed.stats.lines).toBe(4);
    expect(streamed.stats.elements).toBe(true);
    expect(judgeJson(streamed.stats)).toEqual({ ok: true });
  });

  test('ThreatFox members by element', async () => {
    const file = handmade('threatfox-recent-sample.json');
    const filter = "[?ioc_type == 'domain' || ioc_type == 'url'].ioc_value";
    const whole = await parseJson(file, document(`values(@)[] | ${filter}`));
    const streamed = await parseJson(file, elements('@', filter));

    expect(streamed.entries.length).toBeGreaterThan(0);
    expect(streamed.entries).toEqual(whole.entries);
    expect(judgeJson(streamed.stats)).toEqual({ ok: true });
  });

  test('bad elements counted invalid', async () => {
    const body =
      '{"items": [{"ip": "192.0.2.1"}, {"ip": 7}, {"ip": "192.0.2.9"}, {"ip": "192.0.2.1"}]}';
    const { entries, stats } = await parseJson(body, elements('items', 'ip'));

    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', '192.0.2.9']);
    expect(stats.invalid).toBe(1);
    expect(stats.invalidExamples[0]).toEqual(expect.objectContaining({ line: 2 }));
    expect(stats.duplicates).toBe(1);
  });

  test('truncated document rejected', async () => {
    const { stats } = await parseJson(
      '{"items": ["192.0.2.1", "192.0.2.2"',
      elements('items', '@'),
    );
    expect(judgeJson(stats)).toEqual({
      ok: false,
      reason: 'the JSON ends early, so the body is truncated (elements at items)',
    });
  });

  test('missing list rejected', async () => {
    const { stats } = await parseJson('{"data": ["192.0.2.1"]}', elements('items', '@'));
    expect(judgeJson(stats)).toEqual({
      ok: false,
      reason:
        "the document has no array or object at items; check elements against the feed's current format (elements at items)",
    });
  });

  test('HTML page rejected', async () => {
    const { stats } = await parseJson('<!DOCTYPE html><html></html>', elements('@', '@'));
    expect(stats.looksLikeHtml).toBe(true);
  });

  test('chunked input', async () => {
    const body = Buffer.from('{"items": ["192.0.2.1", "2001:db8::7"]}');
    async function* bytes(): AsyncIterable<Buffer> {
      for (const byte of body) yield Buffer.from([byte]);
    }
    const { entries } = await parseJson(bytes(), elements('items', '@'));
    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', '2001:db8::7']);
  });
});

describe('presetExpression', () => {
  test('AWS sample', async () => {
    const file = handmade('aws-ip-ranges-sample.json');
    expect(await presetValues(file, 'aws-ip-ranges')).toEqual([
      '198.51.100.0/24',
      '203.0.113.0/25',
      '192.0.2.0/26',
      '2001:db8:1000::/40',
      '2001:db8:2000::/40',
    ]);
  });

  test('AWS sample service and region', async () => {
    const file = handmade('aws-ip-ranges-sample.json');
    expect(await presetValues(file, 'aws-ip-ranges', { service: ['EC2'] })).toEqual([
      '198.51.100.0/24',
      '203.0.113.0/25',
      '2001:db8:1000::/40',
    ]);
    expect(
      await presetValues(file, 'aws-ip-ranges', { service: ['EC2', 'S3'], region: ['eu-west-1'] }),
    ).toEqual(['203.0.113.0/25', '2001:db8:2000::/40']);
  });

  test('Google Cloud sample scope', async () => {
    const file = handmade('google-cloud-sample.json');
    expect(await presetValues(file, 'google-cloud')).toEqual([
      '198.51.100.0/24',
      '203.0.113.0/24',
      '2001:db8:3000::/44',
    ]);
    expect(
      await presetValues(file, 'google-cloud', {
        service: ['Google Cloud'],
        scope: ['europe-west1'],
      }),
    ).toEqual(['198.51.100.0/24', '2001:db8:3000::/44']);
  });

  test('Google goog sample', async () => {
    expect(await presetValues(handmade('google-goog-sample.json'), 'google-goog')).toEqual([
      '192.0.2.0/24',
      '2001:db8:4000::/36',
    ]);
  });

  test('Cloudflare sample', async () => {
    expect(await presetValues(handmade('cloudflare-ips-sample.json'), 'cloudflare')).toEqual([
      '192.0.2.0/25',
      '198.51.100.128/25',
      '2001:db8:5000::/48',
    ]);
  });

  test('GitHub meta sample', async () => {
    const file = handmade('github-meta-sample.json');
    expect(await presetValues(file, 'github-meta')).toEqual([
      '192.0.2.0/28',
      '2001:db8:6000::/40',
      '198.51.100.0/28',
      '203.0.113.64/27',
      '203.0.113.128/26',
    ]);
    expect(await presetValues(file, 'github-meta', { keys: ['actions'] })).toEqual([
      '203.0.113.128/26',
    ]);
  });

  test('option text stays literal', () => {
    const expression = presetExpression('aws-ip-ranges', { region: ['a\'`b"c'] });
    expect(() => compileExpression(expression)).not.toThrow();
    expect(expression).toContain('contains(`["a\'\\u0060b\\"c"]`, region)');
  });
});

describe('presetExpression real snapshots', () => {
  const aws = `${SHARED_FEEDS}aws-ip-ranges/aws-ip-ranges.json`;
  const gcp = `${SHARED_FEEDS}gcp-cloud-json/google-cloud-ip-ranges.json`;

  test('AWS ip-ranges.json', async () => {
    if (!existsSync(aws)) {
      console.warn(`skipped: ${aws} not found; the snapshot is not committed (no licence)`);
      return;
    }
    const document = JSON.parse(readFileSync(aws, 'utf8')) as {
      prefixes: { ip_prefix: string }[];
      ipv6_prefixes: { ipv6_prefix: string }[];
    };
    const distinct = new Set([
      ...document.prefixes.map((p) => p.ip_prefix),
      ...document.ipv6_prefixes.map((p) => p.ipv6_prefix.toLowerCase()),
    ]);
    const { entries, stats } = await parseJson(readFileSync(aws), {
      format: 'document',
      expression: presetExpression('aws-ip-ranges'),
    });
    expect(stats.invalid).toBe(0);
    expect(stats.valid + stats.duplicates).toBe(
      document.prefixes.length + document.ipv6_prefixes.length,
    );
    expect(entries).toHaveLength(distinct.size);
  });

  test('Google cloud.json', async () => {
    if (!existsSync(gcp)) {
      console.warn(`skipped: ${gcp} not found; the snapshot is not committed (no licence)`);
      return;
    }
    const document = JSON.parse(readFileSync(gcp, 'utf8')) as {
      prefixes: { ipv4Prefix?: string; ipv6Prefix?: string; scope: string }[];
    };
    const { stats } = await parseJson(readFileSync(gcp), {
      format: 'document',
      expression: presetExpression('google-cloud'),
    });
    expect(stats.invalid).toBe(0);
    expect(stats.valid + stats.duplicates).toBe(document.prefixes.length);

    const scope = document.prefixes[0]!.scope;
    const inScope = document.prefixes.filter((p) => p.scope === scope).length;
    const filtered = await parseJson(readFileSync(gcp), {
      format: 'document',
      expression: presetExpression('google-cloud', { scope: [scope] }),
    });
    expect(filtered.stats.valid + filtered.stats.duplicates).toBe(inScope);
  });
});

describe('json source kind', () => {
  const server = new FeedServer();
  const logger = pino({ level: 'silent' });
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  function source(path: string, json: JsonSettings): SourceSettings {
    return {
      id: 'ranges',
      name: 'Ranges',
      kind: 'json',
      url: server.url(path),
      valueType: 'auto',
      timeoutMs: 5000,
      maxBytes: 1 << 20,
      json,
    };
  }

  test('reads a preset document', async () => {
    const body = handmade('cloudflare-ips-sample.json');
    server.set('/ips', { kind: 'body', body, contentType: 'application/json' });
    const result = await SOURCE_KINDS.json!.read({
      source: source('/ips', document(presetExpression('cloudflare'))),
      userAgent: 'feedhub-test',
      logger,
    });
    expect(result.kind).toBe('data');
    if (result.kind !== 'data') return;
    expect(result.entries).toHaveLength(3);
    expect(result.stats.bytes).toBe(body.length);
    expect(result.complete).toBe(true);
  });

  test('rejects a truncated document', async () => {
    server.set('/cut', { kind: 'body', body: '{"result": {"ipv4_cidrs": ["192.0.2.0/25"' });
    await expect(
      SOURCE_KINDS.json!.read({
        source: source('/cut', document(presetExpression('cloudflare'))),
        userAgent: 'feedhub-test',
        logger,
      }),
    ).rejects.toThrow(SourceRejectedError);
  });
});
