import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  CSV_FIELDS,
  DEFAULT_CSV_COLUMNS,
  formatCsvCell,
  formatIsoMicros,
  renderCsv,
  type CsvOptions,
} from '../../../src/views/formats/csv.js';
import { BuildLog, type ViewEntry } from '../../../src/views/model.js';
import { entryFor, FEEDS_DIR, fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const ATTRIBUTE_FIELDS = [
  'ports',
  'malware_families',
  'description',
  'reported_first_seen',
  'reported_last_seen',
] as const;

const ALL_COLUMNS: CsvOptions = { columns: [...DEFAULT_CSV_COLUMNS], header: true, bom: false };

function entry(overrides: Partial<ViewEntry> = {}): ViewEntry {
  return { ...entryFor('ipv4', '192.0.2.1', 0), ...overrides };
}

/** Entries of the Feodo Tracker CSV snapshot, from its `dst_ip` column. */
function feodoEntries(): ViewEntry[] {
  const text = readFileSync(join(FEEDS_DIR, 'abusech-feodotracker/ipblocklist.csv'), 'utf8');
  const rows = text.split(/\r?\n/).filter((line) => line.startsWith('"2'));
  return rows.map((row, index) => entryFor('ipv4', row.split(',')[1]!.replaceAll('"', ''), index));
}

function valueOnly(values: string[]): string {
  const options: CsvOptions = {
    columns: [{ field: 'indicator', header: 'indicator' }],
    header: false,
    bom: false,
  };
  const entries = values.map((value) => entry({ value }));
  return renderCsv(entries, options, new BuildLog()).body;
}

describe('formatCsvCell', () => {
  test.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['line\nbreak', '"line\nbreak"'],
    ['carriage\rreturn', '"carriage\rreturn"'],
    ['', ''],
  ])('quotes %j per RFC 4180', (input, expected) => {
    expect(formatCsvCell(input)).toBe(expected);
  });

  test.each([
    ['=SUM(A1)', `"'=SUM(A1)"`],
    ['+1', `"'+1"`],
    ['-1', `"'-1"`],
    ['@cmd', `"'@cmd"`],
    ['\tx', `"'\tx"`],
    ['\rx', `"'\rx"`],
    ['=HYPERLINK("a")', `"'=HYPERLINK(""a"")"`],
  ])('neutralises formula cell %j', (input, expected) => {
    expect(formatCsvCell(input)).toBe(expected);
  });

  test('leaves inner formula characters alone', () => {
    expect(formatCsvCell('a=b+c-d@e')).toBe('a=b+c-d@e');
  });
});

describe('formatIsoMicros', () => {
  test('whole seconds', () => {
    expect(formatIsoMicros(1_709_251_200_000_000)).toBe('2024-03-01T00:00:00Z');
  });

  test('milliseconds', () => {
    expect(formatIsoMicros(1_709_251_200_123_000)).toBe('2024-03-01T00:00:00.123Z');
  });

  test('microseconds', () => {
    expect(formatIsoMicros(1_709_251_200_000_042)).toBe('2024-03-01T00:00:00.000042Z');
  });
});

describe('renderCsv', () => {
  test('header and row with every field', () => {
    const output = renderCsv([entry()], ALL_COLUMNS, new BuildLog());
    expect(output.body).toBe(
      'indicator,type,confidence,sources,labels,indicator_types,tlp,first_seen,last_seen,id\r\n' +
        `192.0.2.1,ipv4,0,abuse.ch,botnet-c2,malicious-activity,clear,2024-03-01T00:00:00Z,2024-03-02T00:00:00Z,${entry().indicatorId}\r\n`,
    );
    expect(output.contentType).toBe('text/csv; charset=utf-8; header=present');
  });

  test('lists joined with semicolons', () => {
    const options: CsvOptions = {
      columns: [
        { field: 'sources', header: 'src' },
        { field: 'labels', header: 'lab' },
      ],
      header: false,
      bom: false,
    };
    const row = entry({ sources: ['IPsum', 'abuse.ch'], labels: ['a', 'b,c'] });
    expect(renderCsv([row], options, new BuildLog()).body).toBe('IPsum;abuse.ch,"a;b,c"\r\n');
  });

  test('header absent', () => {
    const output = renderCsv([entry()], { ...ALL_COLUMNS, header: false }, new BuildLog());
    expect(output.body.startsWith('192.0.2.1,')).toBe(true);
    expect(output.contentType).toBe('text/csv; charset=utf-8; header=absent');
  });

  test('header cells are escaped', () => {
    const options: CsvOptions = {
      columns: [{ field: 'indicator', header: '=value, "raw"' }],
      header: true,
      bom: false,
    };
    expect(renderCsv([], options, new BuildLog()).body).toBe(`"'=value, ""raw"""\r\n`);
  });

  test('byte order mark', () => {
    const body = renderCsv(
      [entry()],
      { ...ALL_COLUMNS, header: false, bom: true },
      new BuildLog(),
    ).body;
    expect(body.charCodeAt(0)).toBe(0xfeff);
    expect(body.slice(1, 11)).toBe('192.0.2.1,');
  });

  test('formula and quote values', () => {
    expect(valueOnly(['-evil.example', 'a"b', 'x,y', 'ok'])).toBe(
      `"'-evil.example"\r\n"a""b"\r\n"x,y"\r\nok\r\n`,
    );
  });

  test('non-ASCII kept', () => {
    expect(valueOnly(['пример.испытание'])).toBe('пример.испытание\r\n');
  });

  test('empty without header', () => {
    expect(renderCsv([], { ...ALL_COLUMNS, header: false }, new BuildLog()).body).toBe('');
  });

  test('empty with header', () => {
    expect(renderCsv([], ALL_COLUMNS, new BuildLog()).body).toBe(
      'indicator,type,confidence,sources,labels,indicator_types,tlp,first_seen,last_seen,id\r\n',
    );
  });

  test('unknown field rejected', () => {
    const options = {
      columns: [{ field: 'colour', header: 'c' }],
      header: true,
      bom: false,
    } as unknown as CsvOptions;
    expect(() => renderCsv([], options, new BuildLog())).toThrow(
      'invalid CSV column field "colour"',
    );
  });

  test('no columns rejected', () => {
    expect(() => renderCsv([], { columns: [], header: true, bom: false }, new BuildLog())).toThrow(
      'invalid CSV columns',
    );
  });

  test('default columns leave out attributes', () => {
    expect([...DEFAULT_CSV_COLUMNS.map((column) => column.field), ...ATTRIBUTE_FIELDS]).toEqual(
      CSV_FIELDS,
    );
  });

  test('attribute columns', () => {
    const options: CsvOptions = {
      columns: ATTRIBUTE_FIELDS.map((field) => ({ field, header: field })),
      header: true,
      bom: false,
    };
    const attributed = entry({
      ports: [443, 8443],
      malwareFamilies: ['Cobalt Strike', 'Pikabot'],
      description: 'panel, "beacon"',
      reportedFirstSeen: 1_709_251_200_000_000,
      reportedLastSeen: 1_709_251_200_500_000,
    });

    const body = renderCsv([attributed, entry()], options, new BuildLog()).body;

    expect(body).toBe(
      'ports,malware_families,description,reported_first_seen,reported_last_seen\r\n' +
        '443;8443,Cobalt Strike;Pikabot,"panel, ""beacon""",2024-03-01T00:00:00Z,2024-03-01T00:00:00.500Z\r\n' +
        ',,,,\r\n',
    );
  });

  test('feodotracker golden', () => {
    const body = renderCsv(feodoEntries(), ALL_COLUMNS, new BuildLog()).body;
    expect(body).toBe(golden('csv/feodotracker.csv', body));
  });

  test('tor exit golden', () => {
    const entries = fixtureEntries('tor-exit/tor-exit-nodes.lst', 200);
    const body = renderCsv(entries, ALL_COLUMNS, new BuildLog()).body;
    expect(body).toBe(golden('csv/tor-exit.csv', body));
  });

  test('million entries', () => {
    const entries = Array.from({ length: 1_000_000 }, () => entry());
    const body = renderCsv(entries, { ...ALL_COLUMNS, header: false }, new BuildLog()).body;
    expect(body.length).toBeGreaterThan(100_000_000);
  });
});
