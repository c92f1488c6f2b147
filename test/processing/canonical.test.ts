import {
  canonicalize,
  detectAndCanonicalize,
  ipv4RangeToCidrs,
  type ValueType,
} from '../../src/processing/index.js';

type Good = [ValueType, string, ValueType, string];
type Bad = [ValueType, string, RegExp];

const good: Good[] = [
  ['ipv4', '198.51.100.7', 'ipv4', '198.51.100.7'],
  ['ipv4', ' 0.0.0.0 ', 'ipv4', '0.0.0.0'],
  ['ipv4', '255.255.255.255', 'ipv4', '255.255.255.255'],
  ['ipv6', '2001:DB8:0:0:0:0:0:1', 'ipv6', '2001:db8::1'],
  ['ipv6', '2001:0db8:0000:0000:0001:0000:0000:0001', 'ipv6', '2001:db8::1:0:0:1'],
  ['ipv6', '::', 'ipv6', '::'],
  ['ipv6', '2001:db8:0:1:1:1:1:1', 'ipv6', '2001:db8:0:1:1:1:1:1'],
  ['ipv6', '::ffff:1.2.3.4', 'ipv4', '1.2.3.4'],
  ['ipv6', '::FFFF:0102:0304', 'ipv4', '1.2.3.4'],
  ['ipv4-cidr', '198.51.100.0/24', 'ipv4-cidr', '198.51.100.0/24'],
  ['ipv4-cidr', '10.0.0.5/8', 'ipv4-cidr', '10.0.0.0/8'],
  ['ipv4-cidr', '0.0.0.0/0', 'ipv4-cidr', '0.0.0.0/0'],
  ['ipv4-cidr', '255.255.255.255/1', 'ipv4-cidr', '128.0.0.0/1'],
  ['ipv4-cidr', '198.51.100.7/32', 'ipv4', '198.51.100.7'],
  ['ipv4-cidr', '198.51.100.7', 'ipv4', '198.51.100.7'],
  ['ipv6-cidr', '2001:DB8::1/32', 'ipv6-cidr', '2001:db8::/32'],
  ['ipv6-cidr', '2001:db8:abcd:ef12::/50', 'ipv6-cidr', '2001:db8:abcd:c000::/50'],
  ['ipv6-cidr', '::/0', 'ipv6-cidr', '::/0'],
  ['ipv6-cidr', '2001:db8::1/128', 'ipv6', '2001:db8::1'],
  ['ipv4-range', '10.0.0.0-10.0.0.255', 'ipv4-cidr', '10.0.0.0/24'],
  ['ipv4-range', '10.0.0.1 - 10.0.0.1', 'ipv4', '10.0.0.1'],
  ['ipv4-range', '10.0.0.1 - 10.0.0.9', 'ipv4-range', '10.0.0.1-10.0.0.9'],
  ['ipv4-range', '0.0.0.0-255.255.255.255', 'ipv4-cidr', '0.0.0.0/0'],
  ['domain', 'Example.COM.', 'domain', 'example.com'],
  ['domain', 'a-b.example.co.uk', 'domain', 'a-b.example.co.uk'],
  ['domain', 'bücher.example', 'domain', 'xn--bcher-kva.example'],
  ['domain', 'xn--bcher-kva.example', 'domain', 'xn--bcher-kva.example'],
  ['domain', '3com.com', 'domain', '3com.com'],
  ['domain', 'example.xn--p1ai', 'domain', 'example.xn--p1ai'],
  ['url', 'HTTP://Example.COM:80/a/B?q=%41#frag', 'url', 'http://example.com/a/B?q=%41'],
  ['url', 'https://example.com:443', 'url', 'https://example.com/'],
  ['url', 'https://example.com:8443/x', 'url', 'https://example.com:8443/x'],
  ['url', 'http://example.com?x=1', 'url', 'http://example.com/?x=1'],
  ['url', 'ftp://files.example.org:21/pub/', 'url', 'ftp://files.example.org/pub/'],
  ['url', 'example.com/path/to', 'url', 'http://example.com/path/to'],
  ['url', 'http://198.51.100.7:8080/gate.php', 'url', 'http://198.51.100.7:8080/gate.php'],
  ['url', 'http://[2001:DB8::1]:80/', 'url', 'http://[2001:db8::1]/'],
  ['url', 'http://bücher.example/ü', 'url', 'http://xn--bcher-kva.example/ü'],
  ['url', "http://example.com/it's", 'url', "http://example.com/it's"],
  ['url', 'http://User:Pw@example.com/', 'url', 'http://User:Pw@example.com/'],
  ['url', 'http://Under_Score.example.pl/x', 'url', 'http://under_score.example.pl/x'],
  ['md5', 'D41D8CD98F00B204E9800998ECF8427E', 'md5', 'd41d8cd98f00b204e9800998ecf8427e'],
  [
    'sha1',
    'da39a3ee5e6b4b0d3255bfef95601890afd80709',
    'sha1',
    'da39a3ee5e6b4b0d3255bfef95601890afd80709',
  ],
  [
    'sha256',
    'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855',
    'sha256',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  ],
];

const bad: Bad[] = [
  ['ipv4', '256.1.1.1', /four decimal octets/],
  ['ipv4', '1.2.3', /four decimal octets/],
  ['ipv4', '010.1.1.1', /leading zero/],
  ['ipv4', '0x7f.0.0.1', /four decimal octets/],
  ['ipv4', '2130706433', /four decimal octets/],
  ['ipv4', '1.2.3.4.5', /four decimal octets/],
  ['ipv4', '', /empty/],
  ['ipv6', 'fe80::1%eth0', /zone id/],
  ['ipv6', '2001:db8::g', /RFC 4291/],
  ['ipv6', '1:2:3:4:5:6:7:8:9', /RFC 4291/],
  ['ipv6', '2001:db8:::1', /RFC 4291/],
  ['ipv4-cidr', '1.2.3.4/33', /prefix length/],
  ['ipv4-cidr', '1.2.3.4/', /prefix length/],
  ['ipv4-cidr', '1.2.3.4/08', /prefix length/],
  ['ipv4-cidr', '1.2.3/24', /four decimal octets/],
  ['ipv6-cidr', '2001:db8::/129', /prefix length/],
  ['ipv6-cidr', 'fe80::%eth0/64', /zone id/],
  ['ipv4-range', '10.0.0.9-10.0.0.1', /swap/],
  ['ipv4-range', '10.0.0.1-10.0.0.256', /four decimal octets/],
  ['ipv4-range', '10.0.0.1-10.0.0.2-10.0.0.3', /first-last/],
  ['domain', '*.example.com', /wildcards/],
  ['domain', 'localhost', /two labels/],
  ['domain', 'example..com', /empty label/],
  ['domain', '-bad.example.com', /letters, digits and inner hyphens/],
  ['domain', 'bad-.example.com', /letters, digits and inner hyphens/],
  ['domain', 'under_score.example.com', /letters, digits and inner hyphens/],
  ['domain', `${'a'.repeat(64)}.com`, /longer than 63/],
  ['domain', `${'abcdefghi.'.repeat(26)}com`, /longer than 253/],
  ['domain', '1.2.3.4', /all digits/],
  ['domain', 'exa mple.com', /whitespace/],
  ['domain', 'xn--zz.example', /internationalized/],
  ['url', 'javascript://alert(1)', /not supported/],
  ['url', 'http://exa mple.com/', /whitespace/],
  ['url', 'http:///path', /missing host/],
  ['url', 'http://example.com:0/', /port/],
  ['url', 'http://example.com:65536/', /port/],
  ['url', 'http://256.1.1.1/', /dotted-quad/],
  ['url', 'http://[fe80::1%25eth0]/', /zone id/],
  ['url', 'http://-bad.example/', /inner hyphens/],
  ['md5', 'd41d8cd98f00b204e9800998ecf8427', /32 hexadecimal/],
  ['sha1', 'zz39a3ee5e6b4b0d3255bfef95601890afd80709', /40 hexadecimal/],
  ['sha256', 'e3b0c44298fc1c149afbf4c8996fb924', /64 hexadecimal/],
];

describe('canonicalize', () => {
  test.each(good)('%s %s', (type, raw, expectedType, expectedValue) => {
    expect(canonicalize(type, raw)).toEqual({ ok: true, type: expectedType, value: expectedValue });
  });

  test.each(bad)('%s rejects %s', (type, raw, reason) => {
    const result = canonicalize(type, raw);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });

  test('rejection names the value', () => {
    const result = canonicalize('ipv4', '300.1.1.1');
    expect(result.ok ? '' : result.reason).toContain('"300.1.1.1"');
  });
});

describe('detectAndCanonicalize', () => {
  const cases: [string, ValueType, string][] = [
    ['198.51.100.7', 'ipv4', '198.51.100.7'],
    ['2001:db8::1', 'ipv6', '2001:db8::1'],
    ['198.51.100.0/24', 'ipv4-cidr', '198.51.100.0/24'],
    ['2001:db8::/32', 'ipv6-cidr', '2001:db8::/32'],
    ['10.0.0.1 - 10.0.0.9', 'ipv4-range', '10.0.0.1-10.0.0.9'],
    ['Example.com', 'domain', 'example.com'],
    ['http://example.com/x', 'url', 'http://example.com/x'],
    ['example.com/x', 'url', 'http://example.com/x'],
    ['example.com:8080', 'url', 'http://example.com:8080/'],
    ['d41d8cd98f00b204e9800998ecf8427e', 'md5', 'd41d8cd98f00b204e9800998ecf8427e'],
    [
      'da39a3ee5e6b4b0d3255bfef95601890afd80709',
      'sha1',
      'da39a3ee5e6b4b0d3255bfef95601890afd80709',
    ],
    [
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'sha256',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ],
    ['deadbeef.com', 'domain', 'deadbeef.com'],
  ];

  test.each(cases)('detects %s', (raw, type, value) => {
    expect(detectAndCanonicalize(raw)).toEqual({ ok: true, type, value });
  });

  test('invalid address reported as IPv4', () => {
    const result = detectAndCanonicalize('256.1.1.1');
    expect(result.ok ? '' : result.reason).toMatch(/invalid IPv4 address/);
  });

  test('zone id reported as IPv6', () => {
    const result = detectAndCanonicalize('fe80::1%eth0');
    expect(result.ok ? '' : result.reason).toMatch(/zone id/);
  });

  test('empty value rejected', () => {
    expect(detectAndCanonicalize('  ').ok).toBe(false);
  });
});

describe('ipv4RangeToCidrs', () => {
  test('unaligned range', () => {
    expect(ipv4RangeToCidrs('10.0.0.1-10.0.0.9')).toEqual([
      '10.0.0.1/32',
      '10.0.0.2/31',
      '10.0.0.4/30',
      '10.0.0.8/31',
    ]);
  });

  test('whole space', () => {
    expect(ipv4RangeToCidrs('0.0.0.0-255.255.255.255')).toEqual(['0.0.0.0/0']);
  });

  test('range near the top', () => {
    expect(ipv4RangeToCidrs('255.255.255.254-255.255.255.255')).toEqual(['255.255.255.254/31']);
  });

  test('worst case stays small', () => {
    expect(ipv4RangeToCidrs('0.0.0.1-255.255.255.254')).toHaveLength(62);
  });
});

test('domain of 253 characters accepted', () => {
  const name = `${'abcdefghi.'.repeat(25)}com`;
  expect(name).toHaveLength(253);
  expect(canonicalize('domain', name)).toEqual({ ok: true, type: 'domain', value: name });
});
