import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  cefSeverity,
  escapeCefExtension,
  escapeCefHeader,
  formatCefLine,
  renderCef,
} from '../../../src/views/formats/cef.js';
import { BuildLog, type ViewEntry } from '../../../src/views/model.js';
import { parseCefLine } from '../cef-parse.js';
import { entryFor, FEEDS_DIR, fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const OPTIONS = { version: '1.0' };
const ID = 'indicator--00000000-0000-5000-8000-000000000000';

function entry(overrides: Partial<ViewEntry> = {}): ViewEntry {
  return {
    type: 'ipv4',
    value: '192.0.2.1',
    indicatorId: ID,
    confidence: 85,
    sources: ['abuse.ch', 'feodo'],
    labels: ['botnet-c2'],
    indicatorTypes: ['malicious-activity'],
    tlp: 'green',
    firstSeen: 1_709_251_200_000_000,
    lastSeen: 1_709_337_600_123_456,
    ...overrides,
  };
}

function feodoEntries(): ViewEntry[] {
  const text = readFileSync(join(FEEDS_DIR, 'abusech-feodotracker/ipblocklist.csv'), 'utf8');
  const rows = text.split(/\r?\n/).filter((line) => line.startsWith('"2'));
  return rows.map((row, index) => entryFor('ipv4', row.split(',')[1]!.replaceAll('"', ''), index));
}

/** Checks that every line of `body` reads back to the fields of its entry. */
function expectRoundTrip(body: string, entries: readonly ViewEntry[]): void {
  const lines = body.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines).toHaveLength(entries.length);
  lines.forEach((line, index) => {
    const source = entries[index]!;
    const parsed = parseCefLine(line);
    const fields = parsed.extensions;
    const valueKey = fields.get('cs5Label') === source.type ? 'cs5' : undefined;
    const value =
      valueKey !== undefined
        ? fields.get('cs5')
        : (fields.get('dst') ??
          fields.get('c6a1') ??
          fields.get('dhost') ??
          fields.get('request') ??
          fields.get('fileHash'));
    expect(value).toBe(source.value);
    expect(fields.get('cat')).toBe(source.type);
    expect(fields.get('cn1')).toBe(String(source.confidence));
    expect(fields.get('cs1')).toBe(
      source.sources.length > 0 ? source.sources.join(';') : undefined,
    );
    expect(fields.get('cs2')).toBe(source.labels.length > 0 ? source.labels.join(';') : undefined);
    expect(fields.get('cs3')).toBe(source.tlp);
    expect(fields.get('cs6')).toBe(source.indicatorId);
    expect(fields.get('deviceCustomDate1')).toBe(String(Math.floor(source.firstSeen / 1000)));
    expect(fields.get('deviceCustomDate2')).toBe(String(Math.floor(source.lastSeen / 1000)));
    expect(parsed.severity).toBe(String(cefSeverity(source.confidence)));
  });
}

describe('escapeCefHeader', () => {
  test.each([
    ['plain', 'plain'],
    ['a|b', 'a\\|b'],
    ['a\\b', 'a\\\\b'],
    ['\\|', '\\\\\\|'],
    ['a=b', 'a=b'],
    ['two\nlines', 'two lines'],
    ['two\r\nlines', 'two lines'],
  ])('escapes %j', (input, expected) => {
    expect(escapeCefHeader(input)).toBe(expected);
  });
});

describe('escapeCefExtension', () => {
  test.each([
    ['plain text', 'plain text'],
    ['a=b', 'a\\=b'],
    ['a\\b', 'a\\\\b'],
    ['a|b', 'a|b'],
    ['line\nbreak', 'line\\nbreak'],
    ['carriage\rreturn', 'carriage\\rreturn'],
    ['\\=', '\\\\\\='],
  ])('escapes %j', (input, expected) => {
    expect(escapeCefExtension(input)).toBe(expected);
  });
});

describe('cefSeverity', () => {
  test.each([
    [0, 0],
    [4, 0],
    [5, 1],
    [85, 9],
    [100, 10],
  ])('confidence %d is severity %d', (confidence, severity) => {
    expect(cefSeverity(confidence)).toBe(severity);
  });
});

describe('formatCefLine', () => {
  test('ipv4 line', () => {
    expect(formatCefLine(entry(), OPTIONS)).toBe(
      'CEF:0|feedhub|feedhub|1.0|ipv4|Threat indicator: ipv4|9|dst=192.0.2.1 cat=ipv4 ' +
        'cn1=85 cn1Label=confidence cs1=abuse.ch;feodo cs1Label=sources cs2=botnet-c2 cs2Label=labels ' +
        'cs3=green cs3Label=tlp cs4=malicious-activity cs4Label=indicator types ' +
        `cs6=${ID} cs6Label=stix indicator id ` +
        'deviceCustomDate1=1709251200000 deviceCustomDate1Label=first seen ' +
        'deviceCustomDate2=1709337600123 deviceCustomDate2Label=last seen',
    );
  });

  test.each([
    ['ipv6', '2001:db8::1', 'dst=', 'c6a1=2001:db8::1 c6a1Label=indicator cat=ipv6'],
    ['domain', 'evil.example', 'dst=', 'dhost=evil.example cat=domain'],
    ['url', 'http://evil.example/a?b=c', 'dst=', 'request=http://evil.example/a?b\\=c cat=url'],
    [
      'md5',
      'd41d8cd98f00b204e9800998ecf8427e',
      'dst=',
      'fileHash=d41d8cd98f00b204e9800998ecf8427e cat=md5',
    ],
    ['sha256', 'ab'.repeat(32), 'dst=', `fileHash=${'ab'.repeat(32)} cat=sha256`],
    [
      'ipv4-cidr',
      '198.51.100.0/24',
      'dst=',
      'cs5=198.51.100.0/24 cs5Label=ipv4-cidr cat=ipv4-cidr',
    ],
    ['ipv6-cidr', '2001:db8::/32', 'dst=', 'cs5=2001:db8::/32 cs5Label=ipv6-cidr cat=ipv6-cidr'],
    [
      'ipv4-range',
      '192.0.2.1-192.0.2.9',
      'dst=',
      'cs5=192.0.2.1-192.0.2.9 cs5Label=ipv4-range cat=ipv4-range',
    ],
  ] as const)('%s key', (type, value, absent, expected) => {
    const line = formatCefLine(entry({ type, value }), OPTIONS);
    expect(line).toContain(`|${expected} cn1=`);
    expect(line).not.toContain(absent);
  });

  test('header options escaped', () => {
    const line = formatCefLine(entry(), {
      vendor: 'ACME|Corp',
      product: 'hub\\x',
      version: '2\n0',
      signatureId: 'sig=1',
      name: 'Bad | worse',
    });
    expect(line.startsWith('CEF:0|ACME\\|Corp|hub\\\\x|2 0|sig=1|Bad \\| worse|9|dst=')).toBe(true);
  });

  test('default version from package.json', () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(formatCefLine(entry()).split('|')[3]).toBe(version);
  });

  test('empty lists left out', () => {
    const line = formatCefLine(entry({ labels: [], sources: [] }), OPTIONS);
    expect(line).not.toContain('cs1');
    expect(line).not.toContain('cs2');
  });

  test('hard values read back', () => {
    const hard = entry({
      type: 'url',
      value: 'http://x.example/p|q\\r=s t=u\nv\rw',
      sources: ['Ünïcödé feed', 'a=b c=d', 'pipe|source'],
      labels: ['back\\slash', 'trailing\\'],
      indicatorTypes: ['x y'],
    });
    const line = formatCefLine(hard, { name: 'n|=\\', vendor: 'Vé|ndor' });
    expect(line).not.toMatch(/[\r\n]/);
    const parsed = parseCefLine(line);
    expect(parsed.vendor).toBe('Vé|ndor');
    expect(parsed.name).toBe('n|=\\');
    expect(parsed.extensions.get('request')).toBe(hard.value);
    expect(parsed.extensions.get('cs1')).toBe('Ünïcödé feed;a=b c=d;pipe|source');
    expect(parsed.extensions.get('cs2')).toBe('back\\slash;trailing\\');
    expect(parsed.extensions.get('cs4')).toBe('x y');
    expect(parsed.extensions.get('cs4Label')).toBe('indicator types');
  });
});

describe('formatCefLine attributes', () => {
  test('one port, family, description and reported times', () => {
    const line = formatCefLine(
      entry({
        ports: [8443],
        malwareFamilies: ['Pikabot'],
        description: 'C2 = panel',
        reportedFirstSeen: 1_709_251_200_000_000,
        reportedLastSeen: 1_709_337_600_000_000,
      }),
      OPTIONS,
    );

    const { extensions } = parseCefLine(line);
    expect(extensions.get('dpt')).toBe('8443');
    expect(extensions.get('flexString2')).toBeUndefined();
    expect(extensions.get('flexString1')).toBe('Pikabot');
    expect(extensions.get('flexString1Label')).toBe('malware family');
    expect(extensions.get('msg')).toBe('C2 = panel');
    expect(extensions.get('start')).toBe('1709251200000');
    expect(extensions.get('end')).toBe('1709337600000');
  });

  test('several ports', () => {
    const { extensions } = parseCefLine(formatCefLine(entry({ ports: [80, 443] }), OPTIONS));

    expect(extensions.get('dpt')).toBeUndefined();
    expect(extensions.get('flexString2')).toBe('80;443');
    expect(extensions.get('flexString2Label')).toBe('ports');
  });

  test('absent attributes leave no keys', () => {
    const { extensions } = parseCefLine(formatCefLine(entry(), OPTIONS));

    for (const key of ['dpt', 'flexString1', 'flexString2', 'msg', 'start', 'end']) {
      expect(extensions.has(key)).toBe(false);
    }
  });
});

describe('renderCef', () => {
  test('empty body', () => {
    const output = renderCef([], OPTIONS, new BuildLog());
    expect(output.body).toBe('');
    expect(output.contentType).toBe('text/plain; charset=utf-8');
  });

  test('one line per entry', () => {
    const entries = [entry(), entry({ value: '192.0.2.2' })];
    const body = renderCef(entries, OPTIONS, new BuildLog()).body;
    expect(body).toBe(
      `${formatCefLine(entries[0]!, OPTIONS)}\n${formatCefLine(entries[1]!, OPTIONS)}\n`,
    );
  });

  test.each([
    ['feodotracker', () => feodoEntries()],
    ['tor-exit', () => fixtureEntries('tor-exit/tor-exit-nodes.lst', 100)],
    ['ransomware-domains', () => fixtureEntries('abusech-ransomwaretracker/RW_DOMBL.txt', 100)],
    ['ransomware-urls', () => fixtureEntries('abusech-ransomwaretracker/RW_URLBL.txt', 100)],
    ['eset-sha256', () => fixtureEntries('eset-malware-ioc/bandook/samples.sha256', 100)],
  ])('%s golden reads back', (name, build) => {
    const entries = build();
    const body = renderCef(entries, OPTIONS, new BuildLog()).body;
    expect(body).toBe(golden(`cef/${name}.cef`, body));
    expectRoundTrip(body, entries);
  });

  test('hard entries read back', () => {
    const entries = [
      entry({ type: 'domain', value: 'xn--e1afmkfd.xn--80akhbyknj4f', sources: ['пример'] }),
      entry({ type: 'ipv4-range', value: '192.0.2.1-192.0.2.9', labels: [] }),
      entry({ type: 'url', value: 'http://a.example/=\\|', sources: ['s\r\nt'] }),
    ];
    expectRoundTrip(renderCef(entries, OPTIONS, new BuildLog()).body, entries);
  });
});
