import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  AWS_WAF_MAX_ADDRESSES,
  CHECKPOINT_HEADER,
  checkpointLevel,
  FORTIGATE_LIMITS,
  renderAwsWafIpSet,
  renderCheckpointCsv,
  renderCiscoSi,
  renderFortigate,
  renderRpz,
  type AwsWafIpSetOptions,
  type RpzOptions,
} from '../../../src/views/formats/devices.js';
import { BuildLog, type ViewEntry } from '../../../src/views/model.js';
import { entryFor, FEEDS_DIR, fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const ID = 'indicator--00000000-0000-5000-8000-000000000000';

function entry(
  type: ViewEntry['type'],
  value: string,
  overrides: Partial<ViewEntry> = {},
): ViewEntry {
  return {
    type,
    value,
    indicatorId: ID,
    confidence: 85,
    sources: ['abuse.ch'],
    labels: ['botnet-c2'],
    indicatorTypes: ['malicious-activity'],
    tlp: 'green',
    firstSeen: 1_709_251_200_000_000,
    lastSeen: 1_709_337_600_000_000,
    ...overrides,
  };
}

/** One entry of every value type. */
const MIXED: ViewEntry[] = [
  entry('ipv4', '192.0.2.1'),
  entry('ipv4-cidr', '198.51.100.0/24'),
  entry('ipv4-range', '192.0.2.10-192.0.2.20'),
  entry('ipv6', '2001:db8::1'),
  entry('ipv6-cidr', '2001:db8:1::/48'),
  entry('domain', 'evil.example'),
  entry('url', 'http://evil.example/path?q=1'),
  entry('md5', 'd41d8cd98f00b204e9800998ecf8427e'),
  entry('sha1', 'da39a3ee5e6b4b0d3255bfef95601890afd80709'),
  entry('sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'),
];

function feodoEntries(): ViewEntry[] {
  const text = readFileSync(join(FEEDS_DIR, 'abusech-feodotracker/ipblocklist.csv'), 'utf8');
  const rows = text.split(/\r?\n/).filter((line) => line.startsWith('"2'));
  return rows.map((row, index) => entryFor('ipv4', row.split(',')[1]!.replaceAll('"', ''), index));
}

const torEntries = (): ViewEntry[] => fixtureEntries('tor-exit/tor-exit-nodes.lst', 100);
const domainEntries = (): ViewEntry[] =>
  fixtureEntries('abusech-ransomwaretracker/RW_DOMBL.txt', 100);
const urlEntries = (): ViewEntry[] => fixtureEntries('abusech-ransomwaretracker/RW_URLBL.txt', 100);
const hashEntries = (): ViewEntry[] =>
  fixtureEntries('eset-malware-ioc/bandook/samples.sha256', 100);

describe('renderFortigate', () => {
  test('ip list', () => {
    const log = new BuildLog();
    const output = renderFortigate(MIXED, { list: 'ip' }, log);
    expect(output.body).toBe(
      '192.0.2.1\n198.51.100.0/24\n192.0.2.10-192.0.2.20\n2001:db8::1\n2001:db8:1::/48\n',
    );
    expect(output.contentType).toBe('text/plain; charset=utf-8');
    expect(log.counts).toEqual({ rewritten: 0, dropped: 0 });
  });

  test('domain list', () => {
    expect(renderFortigate(MIXED, { list: 'domain' }, new BuildLog()).body).toBe('evil.example\n');
  });

  test('domain wildcard', () => {
    const body = renderFortigate(
      MIXED,
      { list: 'domain', wildcardSubdomains: true },
      new BuildLog(),
    ).body;
    expect(body).toBe('evil.example\n*.evil.example\n');
  });

  test('url list keeps scheme', () => {
    expect(renderFortigate(MIXED, { list: 'url' }, new BuildLog()).body).toBe(
      'http://evil.example/path?q=1\n',
    );
  });

  test('entry limit drops rest', () => {
    const log = new BuildLog();
    const entries = [
      entry('ipv4', '192.0.2.1'),
      entry('ipv4', '192.0.2.2'),
      entry('ipv4', '192.0.2.3'),
    ];
    const body = renderFortigate(entries, { list: 'ip', maxEntries: 2 }, log).body;
    expect(body).toBe('192.0.2.1\n192.0.2.2\n');
    expect(log.counts.dropped).toBe(1);
    expect(log.events[0]).toEqual({
      action: 'dropped',
      value: '192.0.2.3',
      reason: `FortiGate file limit reached (2 lines or ${FORTIGATE_LIMITS.maxBytes} bytes)`,
    });
  });

  test('wildcard pair counts twice', () => {
    const log = new BuildLog();
    const entries = [entry('domain', 'a.example'), entry('domain', 'b.example')];
    const options = { list: 'domain', wildcardSubdomains: true, maxEntries: 3 } as const;
    expect(renderFortigate(entries, options, log).body).toBe('a.example\n*.a.example\n');
    expect(log.counts.dropped).toBe(1);
  });

  test('byte limit drops rest', () => {
    const log = new BuildLog();
    const entries = [entry('ipv4', '192.0.2.1'), entry('ipv4', '192.0.2.2')];
    expect(renderFortigate(entries, { list: 'ip', maxBytes: 15 }, log).body).toBe('192.0.2.1\n');
    expect(log.counts.dropped).toBe(1);
  });

  test('long line dropped', () => {
    const log = new BuildLog();
    const long = `http://evil.example/${'a'.repeat(FORTIGATE_LIMITS.maxLineBytes)}`;
    expect(renderFortigate([entry('url', long)], { list: 'url' }, log).body).toBe('');
    expect(log.events[0]?.reason).toBe('longer than the FortiGate line limit of 4096 bytes');
  });

  test('invalid list rejected', () => {
    const options = { list: 'mac' } as unknown as Parameters<typeof renderFortigate>[1];
    expect(() => renderFortigate([], options, new BuildLog())).toThrow(
      'invalid FortiGate list "mac"',
    );
  });

  test('empty body', () => {
    expect(renderFortigate([], { list: 'ip' }, new BuildLog()).body).toBe('');
  });

  test.each([
    ['feodotracker', 'ip', feodoEntries],
    ['tor-exit', 'ip', torEntries],
    ['ransomware-domains', 'domain', domainEntries],
    ['ransomware-urls', 'url', urlEntries],
  ] as const)('%s golden', (name, list, build) => {
    const body = renderFortigate(build(), { list }, new BuildLog()).body;
    expect(body).toBe(golden(`fortigate/${name}.txt`, body));
  });
});

describe('renderCheckpointCsv', () => {
  test('every type', () => {
    const log = new BuildLog();
    const output = renderCheckpointCsv(MIXED, {}, log);
    const comment = 'sources: abuse.ch / labels: botnet-c2 / tlp: green';
    expect(output.body).toBe(
      [
        CHECKPOINT_HEADER,
        `${ID},192.0.2.1,IP,high,high,AB,${comment}`,
        `${ID},198.51.100.0-198.51.100.255,IP Range,high,high,AB,${comment}`,
        `${ID},192.0.2.10-192.0.2.20,IP Range,high,high,AB,${comment}`,
        `${ID},evil.example,Domain,high,high,AB,${comment}`,
        `${ID},http://evil.example/path?q=1,URL,high,high,AB,${comment}`,
        `${ID},d41d8cd98f00b204e9800998ecf8427e,MD5,high,high,AV,${comment}`,
        `${ID},da39a3ee5e6b4b0d3255bfef95601890afd80709,SHA1,high,high,AV,${comment}`,
        `${ID},e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855,SHA256,high,high,AV,${comment}`,
        '',
      ].join('\n'),
    );
    expect(log.counts).toEqual({ rewritten: 1, dropped: 2 });
    expect(log.events).toEqual([
      {
        action: 'rewritten',
        value: '198.51.100.0/24',
        result: '198.51.100.0-198.51.100.255',
        reason: 'CIDR written as an IP Range',
      },
      {
        action: 'dropped',
        value: '2001:db8::1',
        reason: 'Check Point IP observables are IPv4 only',
      },
      {
        action: 'dropped',
        value: '2001:db8:1::/48',
        reason: 'Check Point IP observables are IPv4 only',
      },
    ]);
  });

  test('severity and product options', () => {
    const body = renderCheckpointCsv(
      [entry('ipv4', '192.0.2.1', { confidence: 10, labels: [], sources: ['a,b'] })],
      { severity: 'critical', product: 'AV' },
      new BuildLog(),
    ).body;
    expect(body).toBe(
      `${CHECKPOINT_HEADER}\n${ID},192.0.2.1,IP,low,critical,AV,"sources: a,b / tlp: green"\n`,
    );
  });

  test.each([
    [0, 'low'],
    [29, 'low'],
    [30, 'medium'],
    [69, 'medium'],
    [70, 'high'],
    [100, 'high'],
  ])('confidence %d is %s', (confidence, level) => {
    expect(checkpointLevel(confidence)).toBe(level);
  });

  test('empty document', () => {
    expect(renderCheckpointCsv([], {}, new BuildLog()).body).toBe(`${CHECKPOINT_HEADER}\n`);
  });

  test.each([
    ['feodotracker', feodoEntries],
    ['ransomware-domains', domainEntries],
    ['ransomware-urls', urlEntries],
    ['eset-sha256', hashEntries],
  ] as const)('%s golden', (name, build) => {
    const body = renderCheckpointCsv(build(), {}, new BuildLog()).body;
    expect(body).toBe(golden(`checkpoint/${name}.csv`, body));
  });
});

describe('renderCiscoSi', () => {
  test('network list', () => {
    const log = new BuildLog();
    const body = renderCiscoSi(MIXED, { list: 'network' }, log).body;
    expect(body).toBe(
      [
        '192.0.2.1',
        '198.51.100.0/24',
        '192.0.2.10/31',
        '192.0.2.12/30',
        '192.0.2.16/30',
        '192.0.2.20/32',
        '2001:db8::1',
        '2001:db8:1::/48',
        '',
      ].join('\n'),
    );
    expect(log.events).toEqual([
      {
        action: 'rewritten',
        value: '192.0.2.10-192.0.2.20',
        result: '192.0.2.10/31 192.0.2.12/30 192.0.2.16/30 192.0.2.20/32',
        reason: 'range written as CIDR blocks',
      },
    ]);
  });

  test('dns and url lists', () => {
    expect(renderCiscoSi(MIXED, { list: 'dns' }, new BuildLog()).body).toBe('evil.example\n');
    expect(renderCiscoSi(MIXED, { list: 'url' }, new BuildLog()).body).toBe(
      'http://evil.example/path?q=1\n',
    );
  });

  test('comment lines', () => {
    const options = { list: 'dns', comments: ['feedhub list', 'two\nlines'] } as const;
    expect(renderCiscoSi([entry('domain', 'a.example')], options, new BuildLog()).body).toBe(
      '# feedhub list\n# two lines\na.example\n',
    );
  });

  test('zero netmask dropped', () => {
    const log = new BuildLog();
    expect(renderCiscoSi([entry('ipv6-cidr', '::/0')], { list: 'network' }, log).body).toBe('');
    expect(log.events[0]?.reason).toBe('Cisco Security Intelligence rejects a /0 netmask');
  });

  test('byte limit drops rest', () => {
    const log = new BuildLog();
    const entries = [entry('domain', 'a.example'), entry('domain', 'b.example')];
    expect(renderCiscoSi(entries, { list: 'dns', maxBytes: 12 }, log).body).toBe('a.example\n');
    expect(log.events[0]?.reason).toBe('Cisco file size limit of 12 bytes reached');
  });

  test.each([
    ['feodotracker', 'network', feodoEntries],
    ['tor-exit', 'network', torEntries],
    ['ransomware-domains', 'dns', domainEntries],
    ['ransomware-urls', 'url', urlEntries],
  ] as const)('%s golden', (name, list, build) => {
    const body = renderCiscoSi(build(), { list }, new BuildLog()).body;
    expect(body).toBe(golden(`cisco/${name}.txt`, body));
  });
});

describe('renderAwsWafIpSet', () => {
  const IPV4: AwsWafIpSetOptions = {
    name: 'feedhub-c2',
    scope: 'REGIONAL',
    ipAddressVersion: 'IPV4',
  };

  test('ipv4 set', () => {
    const log = new BuildLog();
    const output = renderAwsWafIpSet(MIXED, IPV4, log);
    expect(JSON.parse(output.body)).toEqual({
      Name: 'feedhub-c2',
      Scope: 'REGIONAL',
      IPAddressVersion: 'IPV4',
      Addresses: [
        '192.0.2.1/32',
        '198.51.100.0/24',
        '192.0.2.10/31',
        '192.0.2.12/30',
        '192.0.2.16/30',
        '192.0.2.20/32',
      ],
    });
    expect(output.contentType).toBe('application/json');
    expect(output.body.endsWith('\n')).toBe(true);
    expect(log.counts).toEqual({ rewritten: 1, dropped: 0 });
  });

  test('ipv6 set', () => {
    const options: AwsWafIpSetOptions = {
      name: 'v6',
      scope: 'CLOUDFRONT',
      ipAddressVersion: 'IPV6',
      description: 'C2 servers',
    };
    expect(renderAwsWafIpSet(MIXED, options, new BuildLog()).body).toBe(
      '{\n  "Name": "v6",\n  "Scope": "CLOUDFRONT",\n  "IPAddressVersion": "IPV6",\n' +
        '  "Description": "C2 servers",\n  "Addresses": [\n    "2001:db8::1/128",\n' +
        '    "2001:db8:1::/48"\n  ]\n}\n',
    );
  });

  test('duplicates written once', () => {
    const entries = [entry('ipv4', '192.0.2.20'), entry('ipv4-range', '192.0.2.19-192.0.2.20')];
    const parsed = JSON.parse(renderAwsWafIpSet(entries, IPV4, new BuildLog()).body) as {
      Addresses: string[];
    };
    expect(parsed.Addresses).toEqual(['192.0.2.20/32', '192.0.2.19/32']);
  });

  test('address limit drops rest', () => {
    const log = new BuildLog();
    const entries = Array.from({ length: AWS_WAF_MAX_ADDRESSES + 5 }, (_, index) =>
      entry('ipv4', `10.${index >> 16}.${(index >> 8) & 255}.${index & 255}`),
    );
    const parsed = JSON.parse(renderAwsWafIpSet(entries, IPV4, log).body) as {
      Addresses: string[];
    };
    expect(parsed.Addresses).toHaveLength(AWS_WAF_MAX_ADDRESSES);
    expect(log.counts.dropped).toBe(5);
    expect(log.events[0]?.reason).toBe('AWS WAF limit of 10000 addresses per IP set reached');
  });

  test('zero prefix dropped', () => {
    const log = new BuildLog();
    renderAwsWafIpSet([entry('ipv4-cidr', '0.0.0.0/0')], IPV4, log);
    expect(log.events[0]?.reason).toBe('AWS WAF rejects a /0 prefix');
  });

  test('invalid name rejected', () => {
    expect(() => renderAwsWafIpSet([], { ...IPV4, name: 'bad name' }, new BuildLog())).toThrow(
      'invalid AWS WAF IP set name "bad name"',
    );
  });

  test('invalid scope rejected', () => {
    const options = { ...IPV4, scope: 'GLOBAL' } as unknown as AwsWafIpSetOptions;
    expect(() => renderAwsWafIpSet([], options, new BuildLog())).toThrow(
      'invalid AWS WAF scope "GLOBAL"',
    );
  });

  test('empty set', () => {
    expect(JSON.parse(renderAwsWafIpSet([], IPV4, new BuildLog()).body)).toEqual({
      Name: 'feedhub-c2',
      Scope: 'REGIONAL',
      IPAddressVersion: 'IPV4',
      Addresses: [],
    });
  });

  test.each([
    ['feodotracker', feodoEntries],
    ['tor-exit', torEntries],
  ] as const)('%s golden', (name, build) => {
    const body = renderAwsWafIpSet(build(), IPV4, new BuildLog()).body;
    expect(body).toBe(golden(`aws-waf/${name}.json`, body));
  });
});

describe('renderRpz', () => {
  const RPZ: RpzOptions = { zone: 'rpz.feedhub.test', serial: 2024030100 };
  const HEAD =
    '$TTL 300\n$ORIGIN rpz.feedhub.test.\n' +
    '@ IN SOA localhost. hostmaster.localhost. 2024030100 3600 600 604800 300\n' +
    '@ IN NS localhost.\n';

  test('domains with wildcard', () => {
    const output = renderRpz(MIXED, RPZ, new BuildLog());
    expect(output.body).toBe(`${HEAD}evil.example CNAME .\n*.evil.example CNAME .\n`);
    expect(output.contentType).toBe('text/dns');
  });

  test('without wildcard and custom soa', () => {
    const options: RpzOptions = {
      zone: 'rpz.example.',
      serial: 7,
      ttl: 60,
      wildcard: false,
      nameServer: 'ns1.example',
      hostmaster: 'dns.example.',
    };
    expect(renderRpz([entry('domain', 'a.example')], options, new BuildLog()).body).toBe(
      '$TTL 60\n$ORIGIN rpz.example.\n@ IN SOA ns1.example. dns.example. 7 3600 600 604800 300\n' +
        '@ IN NS ns1.example.\na.example CNAME .\n',
    );
  });

  test('empty zone', () => {
    expect(renderRpz([], RPZ, new BuildLog()).body).toBe(HEAD);
  });

  test('long name dropped', () => {
    const log = new BuildLog();
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(50)}.example`;
    expect(renderRpz([entry('domain', long)], RPZ, log).body).toBe(HEAD);
    expect(log.events[0]?.reason).toBe(
      'longer than 253 characters under the zone rpz.feedhub.test',
    );
  });

  test('zone file characters dropped', () => {
    const log = new BuildLog();
    expect(renderRpz([entry('domain', 'a;b.example')], RPZ, log).body).toBe(HEAD);
    expect(log.counts.dropped).toBe(1);
  });

  test.each([
    [{ ...RPZ, serial: -1 }, 'invalid RPZ serial -1'],
    [{ ...RPZ, serial: 2 ** 32 }, 'invalid RPZ serial 4294967296'],
    [{ ...RPZ, zone: 'bad zone' }, 'invalid RPZ zone "bad zone"'],
    [{ ...RPZ, ttl: 1.5 }, 'invalid RPZ ttl 1.5'],
  ])('invalid options rejected', (options, message) => {
    expect(() => renderRpz([], options, new BuildLog())).toThrow(message);
  });

  test('ransomware domains golden', () => {
    const body = renderRpz(domainEntries(), RPZ, new BuildLog()).body;
    expect(body).toBe(golden('rpz/ransomware-domains.rpz', body));
  });
});
