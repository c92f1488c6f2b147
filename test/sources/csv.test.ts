import { readFileSync } from 'node:fs';
import pino from 'pino';

import {
  judgeCsv,
  MAX_RECORD_LENGTH,
  parseCsv,
  parseFeedTime,
  SOURCE_KINDS,
  SourceRejectedError,
  type CsvSettings,
  type SourceSettings,
} from '../../src/sources/index.js';
import { FeedServer } from '../helpers/feed-server.js';

const FIXTURES = new URL('../fixtures/', import.meta.url);
const FEODO = readFileSync(new URL('feeds/abusech-feodotracker/ipblocklist.csv', FIXTURES));
const EXCEL = readFileSync(new URL('handmade/excel-export.csv', FIXTURES));

function settings(overrides: Partial<CsvSettings> = {}): CsvSettings {
  return {
    delimiter: ',',
    comment: '#',
    header: true,
    columns: [{ column: 'dst_ip', valueType: 'ipv4' }],
    skip: [],
    ...overrides,
  };
}

async function* chunksOf(bytes: Buffer, size: number): AsyncIterable<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) {
    yield bytes.subarray(offset, offset + size);
  }
}

/** Reads the IP address and status of each data row of the Feodo Tracker CSV without the parser. */
function feodoRows(): { ip: string; status: string }[] {
  return FEODO.toString('utf8')
    .split('\n')
    .filter((line) => line.startsWith('"') && !line.startsWith('"first_seen_utc"'))
    .map((line) => {
      const cells = line.split('","');
      return { ip: cells[1]!, status: cells[3]! };
    });
}

describe('parseCsv Feodo Tracker', () => {
  test('header row and comments', async () => {
    const { entries, stats } = await parseCsv(FEODO, settings());
    const expected = feodoRows().map((row) => row.ip);
    expect(expected).toHaveLength(28);
    expect(entries.map((entry) => entry.value)).toEqual(expected);
    expect(new Set(entries.map((entry) => entry.type))).toEqual(new Set(['ipv4']));
    expect(stats.rows).toBe(28);
    expect(stats.comments).toBe(9);
    expect(stats.lines).toBe(38);
    expect(stats.invalid).toBe(0);
    expect(judgeCsv(stats)).toEqual({ ok: true });
  });

  test('skip offline rows', async () => {
    const { entries, stats } = await parseCsv(
      FEODO,
      settings({ skip: [{ column: 'c2_status', equals: 'offline' }] }),
    );
    const online = feodoRows().filter((row) => row.status === 'online');
    expect(online.length).toBeGreaterThan(0);
    expect(entries.map((entry) => entry.value)).toEqual(online.map((row) => row.ip));
    expect(stats.skipped).toBe(28 - online.length);
    expect(judgeCsv(stats)).toEqual({ ok: true });
  });

  test('skip by regular expression', async () => {
    const { stats } = await parseCsv(
      FEODO,
      settings({ skip: [{ column: 'c2_status', matches: '^off' }] }),
    );
    expect(stats.skipped).toBe(feodoRows().filter((row) => row.status === 'offline').length);
  });

  test('chunks of every small size', async () => {
    const whole = await parseCsv(FEODO, settings());
    for (const size of [1, 2, 3, 7, 64]) {
      const chunked = await parseCsv(chunksOf(FEODO, size), settings());
      expect(chunked.entries).toEqual(whole.entries);
      expect(chunked.stats).toEqual(whole.stats);
    }
  });

  test('column by position', async () => {
    const { entries } = await parseCsv(
      FEODO,
      settings({ columns: [{ column: 2, valueType: 'ipv4' }] }),
    );
    expect(entries).toHaveLength(28);
  });

  test('missing column rejected', async () => {
    const { stats } = await parseCsv(
      FEODO,
      settings({ columns: [{ column: 'ip', valueType: 'ipv4' }] }),
    );
    expect(stats.headerProblem).toMatch(
      /column "ip" not found in the header row \(first_seen_utc, dst_ip,/,
    );
    const judgement = judgeCsv(stats);
    expect(judgement.ok).toBe(false);
  });
});

describe('parseCsv header forms', () => {
  const urlhausStyle = [
    '################################################################',
    '# abuse.ch style dump made for this test                        #',
    '################################################################',
    '#',
    '# id,dateadded,url,url_status,threat',
    '"1","2024-04-04 07:06:07","http://198.51.100.7/bins/x86","online","malware_download"',
    '"2","2024-04-04 07:06:08","http://example.com/a.exe","offline","malware_download"',
    '',
  ].join('\n');

  test('header in a comment line', async () => {
    const { entries, stats } = await parseCsv(
      urlhausStyle,
      settings({ columns: [{ column: 'url', valueType: 'url' }] }),
    );
    expect(entries.map((entry) => entry.value)).toEqual([
      'http://198.51.100.7/bins/x86',
      'http://example.com/a.exe',
    ]);
    expect(stats.rows).toBe(2);
    expect(stats.comments).toBe(5);
  });

  test('header false with fields', async () => {
    const { entries } = await parseCsv(
      urlhausStyle,
      settings({
        header: false,
        fields: ['id', 'added', 'link', 'status', 'threat'],
        columns: [{ column: 'link', valueType: 'url' }],
        skip: [{ column: 'status', equals: 'offline' }],
      }),
    );
    expect(entries.map((entry) => entry.value)).toEqual(['http://198.51.100.7/bins/x86']);
  });

  test('fields replace a header row', async () => {
    const body = 'a,b\n192.0.2.1,x\n192.0.2.2,y\n';
    const { entries, stats } = await parseCsv(
      body,
      settings({
        header: true,
        fields: ['ip', 'note'],
        columns: [{ column: 'ip', valueType: 'ipv4' }],
      }),
    );
    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(stats.rows).toBe(2);
  });

  test('header false by position', async () => {
    const body = '192.0.2.1;5\n192.0.2.2;7\n';
    const { entries, stats } = await parseCsv(
      body,
      settings({ delimiter: ';', header: false, columns: [{ column: 1, valueType: 'auto' }] }),
    );
    expect(entries).toEqual([
      { type: 'ipv4', value: '192.0.2.1' },
      { type: 'ipv4', value: '192.0.2.2' },
    ]);
    expect(stats.rows).toBe(2);
  });

  test('multi-character comment prefix', async () => {
    const body = '// list\n/not-a-comment,x\nip,x\n192.0.2.1,x\n';
    const { stats } = await parseCsv(
      body,
      settings({ comment: '//', header: false, columns: [{ column: 1, valueType: 'ipv4' }] }),
    );
    expect(stats.comments).toBe(1);
    expect(stats.rows).toBe(3);
    expect(stats.valid).toBe(1);
    expect(stats.invalid).toBe(2);
  });
});

describe('parseCsv awkward input', () => {
  const excelSettings = settings({
    columns: [
      { column: 'dst_ip', valueType: 'auto' },
      { column: 'URL', valueType: 'url' },
    ],
  });

  test('Excel export', async () => {
    const { entries, stats } = await parseCsv(EXCEL, excelSettings);
    expect(entries).toEqual([
      { type: 'ipv4', value: '198.51.100.7' },
      { type: 'url', value: 'http://203.0.113.10/gate.php?a=1,b=2' },
      { type: 'ipv6', value: '2001:db8::1' },
      { type: 'url', value: 'http://example.net/path,with,commas' },
      { type: 'ipv4', value: '192.0.2.44' },
      { type: 'ipv4', value: '203.0.113.99' },
    ]);
    expect(stats.rows).toBe(5);
    expect(stats.lines).toBe(6);
    expect(stats.invalid).toBe(2);
  });

  test('Excel export truncated row', async () => {
    const { stats } = await parseCsv(EXCEL, excelSettings);
    expect(stats.invalidExamples).toEqual([
      {
        line: 5,
        text: 'Dridex "v4",http://example.org/a b,203.0.113.99,2024-04-03 13:00',
        reason: expect.stringMatching(/^invalid URL "http:\/\/example.org\/a b"/),
      },
      {
        line: 6,
        text: 'Heodo,http://example.com/x',
        reason: 'row has 2 fields but column "dst_ip" is field 3 (truncated row?)',
      },
    ]);
    expect(judgeCsv(stats)).toEqual({ ok: true });
  });

  test('Excel export in chunks', async () => {
    const whole = await parseCsv(EXCEL, excelSettings);
    for (const size of [1, 2, 5]) {
      const chunked = await parseCsv(chunksOf(EXCEL, size), excelSettings);
      expect(chunked.entries).toEqual(whole.entries);
      expect(chunked.stats).toEqual(whole.stats);
    }
  });

  test('quoted line breaks keep line numbers', async () => {
    const body = 'note,ip\n"two\nlines, and ""quotes""",192.0.2.1\nplain,not-an-ip\n';
    const { entries, stats } = await parseCsv(
      body,
      settings({ columns: [{ column: 'ip', valueType: 'ipv4' }] }),
    );
    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1']);
    expect(stats.lines).toBe(4);
    expect(stats.invalidExamples).toEqual([
      expect.objectContaining({ line: 4, text: 'plain,not-an-ip' }),
    ]);
  });

  test('tab delimiter in UTF-16', async () => {
    const text = 'ip\tdomain\r\n192.0.2.1\texample.com\r\n192.0.2.2\t\r\n';
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const { entries, stats } = await parseCsv(
      chunksOf(body, 3),
      settings({
        delimiter: '\t',
        columns: [
          { column: 'ip', valueType: 'ipv4' },
          { column: 'domain', valueType: 'domain' },
        ],
      }),
    );
    expect(entries).toEqual([
      { type: 'ipv4', value: '192.0.2.1' },
      { type: 'domain', value: 'example.com' },
      { type: 'ipv4', value: '192.0.2.2' },
    ]);
    expect(stats.invalid).toBe(0);
  });

  test('row with no value', async () => {
    const body = 'ip,domain\n192.0.2.1,example.com\n,\n';
    const { stats } = await parseCsv(
      body,
      settings({
        columns: [
          { column: 'ip', valueType: 'ipv4' },
          { column: 'domain', valueType: 'domain' },
        ],
      }),
    );
    expect(stats.invalid).toBe(1);
    expect(stats.invalidExamples[0]?.reason).toBe('no value in column "ip", "domain"');
  });

  test('unclosed quote at the end', async () => {
    const body = 'ip\n192.0.2.1\n192.0.2.2\n"192.0.2.3';
    const { stats } = await parseCsv(
      body,
      settings({ columns: [{ column: 'ip', valueType: 'ipv4' }] }),
    );
    expect(stats.valid).toBe(2);
    expect(stats.invalid).toBe(1);
    expect(stats.invalidExamples[0]).toEqual(
      expect.objectContaining({
        line: 4,
        reason: expect.stringMatching(/quoted field not closed/),
      }),
    );
  });

  test('overlong record skipped', async () => {
    const long = `"${'x'.repeat(MAX_RECORD_LENGTH + 10)}\n`;
    const body = `ip\n192.0.2.1\n${long}192.0.2.2\n`;
    const { entries, stats } = await parseCsv(
      body,
      settings({ columns: [{ column: 'ip', valueType: 'ipv4' }] }),
    );
    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(stats.invalidExamples[0]?.reason).toBe(
      `record longer than ${MAX_RECORD_LENGTH} characters`,
    );
  });

  test('duplicates counted once', async () => {
    const body = 'ip\n2001:db8::1\n2001:0DB8:0:0::0001\n192.0.2.1\n';
    const { entries, stats } = await parseCsv(
      body,
      settings({ columns: [{ column: 'ip', valueType: 'auto' }] }),
    );
    expect(entries.map((entry) => entry.value)).toEqual(['2001:db8::1', '192.0.2.1']);
    expect(stats.valid).toBe(2);
    expect(stats.duplicates).toBe(1);
  });
});

describe('parseCsv attribute columns', () => {
  test('Feodo port, family and first seen', async () => {
    const { entries, stats } = await parseCsv(
      FEODO,
      settings({
        attributes: [
          { column: 'first_seen_utc', kind: 'firstSeen' },
          { column: 'dst_port', kind: 'port' },
          { column: 'malware', kind: 'malwareFamily' },
        ],
      }),
    );

    expect(entries).toHaveLength(28);
    expect(entries[0]).toEqual({
      type: 'ipv4',
      value: '192.9.135.73',
      attributes: {
        firstSeen: Date.UTC(2023, 4, 23, 17, 51, 44) * 1000,
        ports: [1194],
        malwareFamilies: ['Pikabot'],
      },
    });
    expect(stats.invalidAttributes).toBe(0);
  });

  test('every kind by position', async () => {
    const body = [
      'ioc,seen,last,port,family,tags,note,score',
      '192.0.2.1,2024-01-02T03:04:05.5+01:00,1704164645,"80;443",Mirai,"botnet, scanner|iot",spam run,75',
      '192.0.2.2,,,,,,,',
    ].join('\n');
    const { entries } = await parseCsv(
      body,
      settings({
        columns: [{ column: 'ioc', valueType: 'ipv4' }],
        attributes: [
          { column: 2, kind: 'firstSeen' },
          { column: 3, kind: 'lastSeen' },
          { column: 4, kind: 'port' },
          { column: 5, kind: 'malwareFamily' },
          { column: 6, kind: 'tags' },
          { column: 7, kind: 'description' },
          { column: 8, kind: 'confidence' },
        ],
      }),
    );

    expect(entries[0]?.attributes).toEqual({
      firstSeen: Date.UTC(2024, 0, 2, 2, 4, 5, 500) * 1000,
      lastSeen: 1704164645 * 1_000_000,
      ports: [80, 443],
      malwareFamilies: ['Mirai'],
      labels: ['botnet', 'scanner', 'iot'],
      description: 'spam run',
      confidence: 75,
    });
    expect(entries[1]).toEqual({ type: 'ipv4', value: '192.0.2.2' });
  });

  test('invalid cell keeps the value', async () => {
    const body = 'ip,port,score\n192.0.2.1,70000,high\n192.0.2.2,22,50\n';
    const { entries, stats } = await parseCsv(
      body,
      settings({
        columns: [{ column: 'ip', valueType: 'ipv4' }],
        attributes: [
          { column: 'port', kind: 'port' },
          { column: 'score', kind: 'confidence' },
        ],
      }),
    );

    expect(entries.map((entry) => entry.value)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(entries[0]?.attributes).toBeUndefined();
    expect(entries[1]?.attributes).toEqual({ ports: [22], confidence: 50 });
    expect(stats.invalid).toBe(0);
    expect(stats.invalidAttributes).toBe(2);
    expect(stats.invalidExamples[0]?.reason).toBe(
      'column "port": invalid port "70000": expected an integer 1-65535; the row\'s values are kept without it',
    );
    expect(stats.invalidExamples[1]?.reason).toContain('invalid confidence "high"');
  });

  test('missing attribute column named', async () => {
    const { stats } = await parseCsv(
      FEODO,
      settings({ attributes: [{ column: 'threat', kind: 'tags' }] }),
    );

    expect(stats.headerProblem).toContain('column "threat" not found in the header row');
  });
});

describe('parseFeedTime', () => {
  const cases: [string, number | undefined][] = [
    ['2024-03-04T05:06:07Z', Date.UTC(2024, 2, 4, 5, 6, 7) * 1000],
    ['2024-03-04 05:06:07', Date.UTC(2024, 2, 4, 5, 6, 7) * 1000],
    ['2024-03-04 05:06:07 UTC', Date.UTC(2024, 2, 4, 5, 6, 7) * 1000],
    ['2024-03-04T05:06:07.123456-02:30', Date.UTC(2024, 2, 4, 7, 36, 7) * 1000 + 123456],
    ['2024-03-04', Date.UTC(2024, 2, 4) * 1000],
    ['1709528767', 1709528767 * 1_000_000],
    ['1709528767.25', 1709528767 * 1_000_000 + 250_000],
    ['1709528767123', 1709528767123 * 1000],
    ['2024-02-30', undefined],
    ['2024-13-01', undefined],
    ['yesterday', undefined],
    ['', undefined],
  ];
  test.each(cases)('%s', (text, expected) => {
    expect(parseFeedTime(text)).toBe(expected);
  });
});

describe('judgeCsv', () => {
  test('HTML page', async () => {
    const { stats } = await parseCsv('<!DOCTYPE html><html><body>login</body></html>', settings());
    expect(judgeCsv(stats)).toEqual({
      ok: false,
      reason: 'the body looks like an HTML page, not CSV',
    });
  });

  test('mostly invalid values', async () => {
    const body = 'dst_ip\n192.0.2.1\nnope\nstill-no\n';
    const { stats } = await parseCsv(body, settings());
    expect(judgeCsv(stats)).toEqual({
      ok: false,
      reason: '2 of 3 values are invalid (more than half)',
    });
  });

  test('every row skipped', async () => {
    const body = 'dst_ip,c2_status\n192.0.2.1,offline\n';
    const { stats } = await parseCsv(
      body,
      settings({ skip: [{ column: 'c2_status', equals: 'offline' }] }),
    );
    expect(judgeCsv(stats)).toEqual({
      ok: false,
      reason: 'no valid values in 1 rows (1 skipped by skip rules)',
    });
  });
});

describe('csv source kind', () => {
  const server = new FeedServer();
  const logger = pino({ level: 'silent' });
  beforeAll(() => server.start());
  afterAll(() => server.stop());

  function source(path: string, csv: CsvSettings = settings()): SourceSettings {
    return {
      id: 'feodo',
      name: 'Feodo',
      kind: 'csv',
      url: server.url(path),
      valueType: 'auto',
      timeoutMs: 5000,
      maxBytes: 1 << 20,
      csv,
    };
  }

  test('reads, then not modified', async () => {
    server.set('/feodo.csv', { kind: 'body', body: FEODO, contentType: 'text/csv' });
    const first = await SOURCE_KINDS.csv!.read({
      source: source('/feodo.csv'),
      userAgent: 'feedhub-test',
      logger,
    });
    expect(first.kind).toBe('data');
    if (first.kind !== 'data') return;
    expect(first.entries).toHaveLength(28);
    expect(first.stats.bytes).toBe(FEODO.length);
    expect(first.stats.skipped).toBe(0);
    expect(first.complete).toBe(true);

    const second = await SOURCE_KINDS.csv!.read({
      source: source('/feodo.csv'),
      previous: { collectionId: 'c', sourceId: 'feodo', etag: first.etag },
      userAgent: 'feedhub-test',
      logger,
    });
    expect(second).toEqual({ kind: 'not-modified' });
  });

  test('rejects an HTML page', async () => {
    server.set('/login.csv', { kind: 'body', body: '<html><body>sign in</body></html>' });
    await expect(
      SOURCE_KINDS.csv!.read({ source: source('/login.csv'), userAgent: 'feedhub-test', logger }),
    ).rejects.toThrow(SourceRejectedError);
  });
});
