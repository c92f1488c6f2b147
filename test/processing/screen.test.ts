import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import {
  AllowList,
  DEFAULT_GUARD_SETTINGS,
  Guards,
  IntervalSet,
  Screen,
  emptyScreenCounts,
  type AllowListSettings,
  type TypedValue,
  type ValueType,
} from '../../src/processing/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'feedhub-screen-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function allowList(overrides: Partial<AllowListSettings> = {}): AllowList {
  return new AllowList({ builtin: [], entries: [], files: [], ...overrides });
}

function guards(overrides: Partial<typeof DEFAULT_GUARD_SETTINGS> = {}): Guards {
  return new Guards({ ...DEFAULT_GUARD_SETTINGS, ...overrides });
}

function rest(list: AllowList, type: ValueType, value: string): string[] {
  const decision = list.check(type, value);
  if (decision.kind !== 'split') throw new Error(`expected a split, got ${decision.kind}`);
  return decision.rest.map((part) => part.value);
}

describe('IntervalSet', () => {
  const set = new IntervalSet<number>(
    [
      { first: 10, last: 19 },
      { first: 20, last: 25 },
      { first: 40, last: 50 },
    ],
    1,
  );

  it('merges adjacent intervals', () => {
    expect(set.size).toBe(2);
  });

  it('overlaps and covers', () => {
    expect(set.overlaps(0, 9)).toBe(false);
    expect(set.overlaps(25, 39)).toBe(true);
    expect(set.covers(12, 25)).toBe(true);
    expect(set.covers(12, 26)).toBe(false);
  });

  it('subtract leaves the gaps', () => {
    expect(set.subtract(0, 60, 1)).toEqual([
      { first: 0, last: 9 },
      { first: 26, last: 39 },
      { first: 51, last: 60 },
    ]);
    expect(set.subtract(12, 22, 1)).toEqual([]);
  });
});

describe('guards', () => {
  const cases: [ValueType, string, string | undefined][] = [
    ['ipv4-cidr', '0.0.0.0/0', 'any-address'],
    ['ipv6-cidr', '::/0', 'any-address'],
    ['ipv4-cidr', '10.0.0.0/7', 'prefix-too-wide'],
    ['ipv4-cidr', '12.0.0.0/8', undefined],
    ['ipv4-range', '1.0.0.0-3.255.255.255', 'prefix-too-wide'],
    ['ipv4-range', '1.0.0.0-1.255.255.254', undefined],
    ['ipv6-cidr', '2a00::/31', 'prefix-too-wide'],
    ['ipv6-cidr', '2a00::/32', undefined],
    ['ipv4', '0.0.0.0', undefined],
    ['domain', 'co.uk', 'public-suffix'],
    ['domain', 'github.io', 'public-suffix'],
    ['domain', 'example.co.uk', undefined],
    ['domain', 'evil.github.io', undefined],
    ['url', 'http://co.uk/path', undefined],
    ['domain', 'a*.example.com', 'wildcard'],
  ];
  const subject = guards();
  it.each(cases)('%s %s', (type, value, rule) => {
    expect(subject.check(type, value)).toBe(rule);
  });

  it('configured minimum prefix', () => {
    const strict = guards({ minPrefixIpv4: 16, minPrefixIpv6: 48 });
    expect(strict.check('ipv4-cidr', '12.0.0.0/15')).toBe('prefix-too-wide');
    expect(strict.check('ipv4-cidr', '12.0.0.0/16')).toBeUndefined();
    expect(strict.check('ipv6-cidr', '2a00::/47')).toBe('prefix-too-wide');
  });

  it('public suffixes off', () => {
    expect(guards({ publicSuffixes: false }).check('domain', 'co.uk')).toBeUndefined();
  });

  describe('protected', () => {
    const own = guards({
      protected: ['198.51.100.0/24', '2001:db8:1::/48', 'mail.example.org', '203.0.113.10'],
    });
    const cases: [ValueType, string, string | undefined][] = [
      ['ipv4', '198.51.100.7', 'protected'],
      ['ipv4-cidr', '198.51.0.0/16', 'protected'],
      ['ipv4-range', '203.0.113.5-203.0.113.20', 'protected'],
      ['ipv4', '198.51.101.1', undefined],
      ['ipv6', '2001:db8:1::25', 'protected'],
      ['domain', 'mail.example.org', 'protected'],
      ['domain', 'x.mail.example.org', 'protected'],
      ['domain', 'example.org', 'protected'],
      ['domain', 'www.example.org', undefined],
      ['url', 'http://mail.example.org/login', 'protected'],
      ['url', 'http://198.51.100.9:8080/x', 'protected'],
      ['url', 'http://[2001:db8:1::1]/x', 'protected'],
      ['url', 'http://www.example.org/x', undefined],
    ];
    it.each(cases)('%s %s', (type, value, rule) => {
      expect(own.check(type, value)).toBe(rule);
    });
  });

  it('protected entry invalid', () => {
    expect(() => guards({ protected: ['not a network'] })).toThrow(/invalid protected entry/);
  });
});

describe('allow-list', () => {
  it('network inside allowed network', () => {
    const list = allowList({ entries: ['10.1.0.0/16'] });
    expect(list.check('ipv4-cidr', '10.1.2.0/24').kind).toBe('allowed');
    expect(list.check('ipv4', '10.1.200.3').kind).toBe('allowed');
    expect(list.check('ipv4', '10.2.0.1').kind).toBe('keep');
  });

  it('IPv4-mapped network allows IPv4', () => {
    const list = allowList({ entries: ['::ffff:45.9.148.0/120'] });
    expect(list.check('ipv4', '45.9.148.67').kind).toBe('allowed');
    expect(list.check('ipv4', '45.9.149.1').kind).toBe('keep');
  });

  it('allowed /24 splits listed /16', () => {
    const list = allowList({ entries: ['10.1.2.0/24'] });
    expect(rest(list, 'ipv4-cidr', '10.1.0.0/16')).toEqual([
      '10.1.0.0/23',
      '10.1.3.0/24',
      '10.1.4.0/22',
      '10.1.8.0/21',
      '10.1.16.0/20',
      '10.1.32.0/19',
      '10.1.64.0/18',
      '10.1.128.0/17',
    ]);
  });

  it('single allowed address splits range', () => {
    const list = allowList({ entries: ['192.0.2.5'] });
    expect(rest(list, 'ipv4-range', '192.0.2.3-192.0.2.9')).toEqual([
      '192.0.2.3',
      '192.0.2.4',
      '192.0.2.6/31',
      '192.0.2.8/31',
    ]);
  });

  it('IPv6 split', () => {
    const list = allowList({ entries: ['2001:db8::/33'] });
    expect(rest(list, 'ipv6-cidr', '2001:db8::/32')).toEqual(['2001:db8:8000::/33']);
  });

  it('domain suffix', () => {
    const list = allowList({ entries: ['example.com'] });
    expect(list.check('domain', 'example.com').kind).toBe('allowed');
    expect(list.check('domain', 'a.b.example.com').kind).toBe('allowed');
    expect(list.check('domain', 'badexample.com').kind).toBe('keep');
    expect(list.check('url', 'https://cdn.example.com/a.js').kind).toBe('allowed');
  });

  it('URL prefix', () => {
    const list = allowList({ entries: ['https://Files.Example.net/public/'] });
    expect(list.check('url', 'https://files.example.net/public/a.zip').kind).toBe('allowed');
    expect(list.check('url', 'https://files.example.net/private/a.zip').kind).toBe('keep');
  });

  it('URL host address', () => {
    const list = allowList({ entries: ['192.0.2.0/24'] });
    expect(list.check('url', 'http://192.0.2.8/x').kind).toBe('allowed');
  });

  it('exact hash', () => {
    const hash = 'd41d8cd98f00b204e9800998ecf8427e';
    const list = allowList({ entries: [hash.toUpperCase()] });
    expect(list.check('md5', hash).kind).toBe('allowed');
  });

  it('regex', () => {
    const list = allowList({ entries: ['regex:^[a-z0-9]+\\.cdn\\.example$'] });
    expect(list.check('domain', 'x1.cdn.example').kind).toBe('allowed');
    expect(list.check('domain', 'x1.cdn.example.org').kind).toBe('keep');
  });

  it('regex backreference rejected', () => {
    expect(() => allowList({ entries: ['regex:(a+)\\1'] })).toThrow(/RE2 syntax/);
  });

  it('regex lookahead rejected', () => {
    expect(() => allowList({ entries: ['regex:(?=a)b'] })).toThrow(/RE2 syntax/);
  });

  it('entry invalid', () => {
    expect(() => allowList({ entries: ['10.0.0.300'] })).toThrow(/allowList.entries/);
  });

  it('file entries', () => {
    const file = join(tmp, 'allow.txt');
    writeFileSync(file, '# our partners\npartner.example   # contract 12\n\n198.51.100.0/24\n');
    const list = allowList({ files: [file] });
    expect(list.check('domain', 'www.partner.example').kind).toBe('allowed');
    expect(list.check('ipv4', '198.51.100.1').kind).toBe('allowed');
  });

  it('file missing', () => {
    expect(() => allowList({ files: [join(tmp, 'missing.txt')] })).toThrow(/could not be read/);
  });

  describe('built-in lists', () => {
    const list = allowList({ builtin: ['bogons', 'public-dns', 'top-domains'] });
    it.each([
      ['ipv4-cidr', '10.0.0.0/8'],
      ['ipv4', '192.168.1.1'],
      ['ipv4', '127.0.0.1'],
      ['ipv6', 'fe80::1'],
      ['ipv6-cidr', 'fc00::/7'],
      ['ipv4', '8.8.8.8'],
      ['ipv4', '1.1.1.1'],
      ['domain', 'google.com'],
    ] as [ValueType, string][])('%s %s allowed', (type, value) => {
      expect(list.check(type, value).kind).toBe('allowed');
    });

    it('top domains match exactly', () => {
      expect(list.check('domain', 'evil.google.com').kind).toBe('keep');
      expect(list.check('url', 'http://google.com/evil').kind).toBe('keep');
    });

    it('resolver splits its /24', () => {
      const parts = rest(list, 'ipv4-cidr', '8.8.8.0/24');
      expect(parts).not.toContain('8.8.8.8');
      expect(parts).toContain('8.8.8.9');
    });

    it('public address kept', () => {
      expect(list.check('ipv4', '185.220.101.1').kind).toBe('keep');
    });
  });
});

describe('Screen', () => {
  it('filter counts and splits', () => {
    const screen = new Screen({
      guards: DEFAULT_GUARD_SETTINGS,
      allowList: { builtin: ['bogons'], entries: ['203.0.113.128/25'], files: [] },
    });
    const counts = emptyScreenCounts();
    const input: TypedValue[] = [
      { type: 'ipv4-cidr', value: '0.0.0.0/0' },
      { type: 'ipv4-cidr', value: '10.0.0.0/8' },
      { type: 'domain', value: 'co.uk' },
      { type: 'ipv4', value: '185.220.101.1' },
      { type: 'ipv4-cidr', value: '203.0.113.0/24' },
    ];
    const kept = screen.filter(input, counts, (_, part) => part);
    // 203.0.113.0/24 is documentation space, so the bogons list allows all of it.
    expect(kept).toEqual([{ type: 'ipv4', value: '185.220.101.1' }]);
    expect(counts.refused['any-address']).toBe(1);
    expect(counts.refused['public-suffix']).toBe(1);
    expect(counts.allowListed).toBe(2);
    expect(counts.examples).toHaveLength(4);
  });

  it('filter keeps remainders', () => {
    const screen = new Screen({
      guards: DEFAULT_GUARD_SETTINGS,
      allowList: { builtin: [], entries: ['185.220.101.128/25'], files: [] },
    });
    const counts = emptyScreenCounts();
    const input: TypedValue[] = [{ type: 'ipv4-cidr', value: '185.220.101.0/24' }];
    const kept = screen.filter(input, counts, (_, part) => part);
    expect(kept).toEqual([{ type: 'ipv4-cidr', value: '185.220.101.0/25' }]);
    expect(counts.split).toBe(1);
  });
});
