import type { ValueType } from '../../src/processing/index.js';
import { escapePatternString, parseSimplePattern, patternFor } from '../../src/stix/index.js';

const SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('patternFor', () => {
  const cases: [ValueType, string, string][] = [
    ['ipv4', '198.51.100.7', "[ipv4-addr:value = '198.51.100.7']"],
    ['ipv4-cidr', '198.51.100.0/24', "[ipv4-addr:value = '198.51.100.0/24']"],
    ['ipv6', '2001:db8::1', "[ipv6-addr:value = '2001:db8::1']"],
    ['ipv6-cidr', '2001:db8::/32', "[ipv6-addr:value = '2001:db8::/32']"],
    [
      'ipv4-range',
      '10.0.0.1-10.0.0.3',
      "[ipv4-addr:value = '10.0.0.1/32' OR ipv4-addr:value = '10.0.0.2/31']",
    ],
    ['domain', 'example.com', "[domain-name:value = 'example.com']"],
    ['url', "http://example.com/it's\\x", "[url:value = 'http://example.com/it\\'s\\\\x']"],
    [
      'md5',
      'd41d8cd98f00b204e9800998ecf8427e',
      "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']",
    ],
    [
      'sha1',
      'da39a3ee5e6b4b0d3255bfef95601890afd80709',
      "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
    ],
    ['sha256', SHA256, `[file:hashes.'SHA-256' = '${SHA256}']`],
  ];

  test.each(cases)('%s %s', (type, value, pattern) => {
    expect(patternFor(type, value)).toBe(pattern);
  });

  test('escape order', () => {
    expect(escapePatternString("a\\'b")).toBe("a\\\\\\'b");
  });
});

describe('parseSimplePattern', () => {
  const roundTrip: [ValueType, string][] = [
    ['ipv4', '198.51.100.7'],
    ['ipv4-cidr', '198.51.100.0/24'],
    ['ipv6', '2001:db8::1'],
    ['ipv6-cidr', '2001:db8::/32'],
    ['domain', 'example.com'],
    ['url', "http://example.com/it's\\x?q=1"],
    ['md5', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['sha1', 'da39a3ee5e6b4b0d3255bfef95601890afd80709'],
    ['sha256', SHA256],
  ];

  test.each(roundTrip)('round trip %s', (type, value) => {
    expect(parseSimplePattern(patternFor(type, value))).toEqual([{ type, value }]);
  });

  test('range comes back as CIDRs', () => {
    expect(parseSimplePattern(patternFor('ipv4-range', '10.0.0.1-10.0.0.3'))).toEqual([
      { type: 'ipv4', value: '10.0.0.1' },
      { type: 'ipv4-cidr', value: '10.0.0.2/31' },
    ]);
  });

  test('OR of observations', () => {
    expect(
      parseSimplePattern("[domain-name:value = 'a.example'] OR [ipv4-addr:value='198.51.100.1']"),
    ).toEqual([
      { type: 'domain', value: 'a.example' },
      { type: 'ipv4', value: '198.51.100.1' },
    ]);
  });

  test('canonicalizes values', () => {
    expect(parseSimplePattern("[  domain-name:value  =  'EXAMPLE.com.' ]")).toEqual([
      { type: 'domain', value: 'example.com' },
    ]);
  });

  test('hash key spellings', () => {
    expect(
      parseSimplePattern(
        `[file:hashes.'SHA256' = '${SHA256}' or file:hashes.sha256 = '${SHA256}']`,
      ),
    ).toEqual([
      { type: 'sha256', value: SHA256 },
      { type: 'sha256', value: SHA256 },
    ]);
  });

  // From the OASIS documentation example "indicator-for-malicious-url".
  test('OASIS example', () => {
    expect(parseSimplePattern("[url:value = 'http://x4z9arb.cn/4712/']")).toEqual([
      { type: 'url', value: 'http://x4z9arb.cn/4712/' },
    ]);
  });

  const unsupported = [
    "[ipv4-addr:value = '198.51.100.7' AND domain-name:value = 'example.com']",
    "[ipv4-addr:value != '198.51.100.7']",
    "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
    "[ipv4-addr:value = '198.51.100.7'] WITHIN 5 SECONDS",
    "[ipv4-addr:value = '198.51.100.7'] AND [ipv4-addr:value = '198.51.100.8']",
    "[file:name = 'evil.exe']",
    "[file:hashes.'SHA-512' = 'ab']",
    "[email-addr:value = 'a@example.com']",
    "[ipv4-addr:value = '300.1.1.1']",
    "[ipv4-addr:value = '198.51.100.7'",
    "[ipv4-addr:value = '198.51.100.7]",
    "[url:value = 'http://example.com/\\n']",
    "[domain-name:value = 'example.com'] OR",
    "[domain-name:valuex = 'example.com']",
    '',
    "[ipv4-addr:value = '198.51.100.7'] extra",
  ];

  test.each(unsupported)('undefined for %s', (pattern) => {
    expect(parseSimplePattern(pattern)).toBeUndefined();
  });
});
