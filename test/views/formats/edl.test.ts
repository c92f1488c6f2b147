import { formatIpv4, parseIpv4, type ValueType } from '../../../src/processing/index.js';
import { renderDomainEdl, renderIpEdl, type IpEdlOptions } from '../../../src/views/formats/edl.js';
import { BuildLog, PLAIN_TEXT, type ViewEntry } from '../../../src/views/model.js';
import { entryFor, fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const KEEP: IpEdlOptions = { ranges: 'keep', collapse: false };
const CIDR: IpEdlOptions = { ranges: 'cidr', collapse: false };
const COLLAPSE: IpEdlOptions = { ranges: 'keep', collapse: true };

function entries(...values: [ValueType, string][]): ViewEntry[] {
  return values.map(([type, value], index) => entryFor(type, value, index));
}

function ipBody(options: IpEdlOptions, ...values: [ValueType, string][]): string {
  return renderIpEdl(entries(...values), options, new BuildLog()).body;
}

describe('renderIpEdl', () => {
  test('numeric order, IPv4 first', () => {
    const body = ipBody(
      KEEP,
      ['ipv4', '10.0.0.2'],
      ['ipv6', '2001:db8::1'],
      ['ipv4', '9.255.255.255'],
      ['ipv4-cidr', '10.0.0.0/8'],
      ['ipv4-range', '1.2.3.4-1.2.3.9'],
      ['ipv6-cidr', '2001:db8::/32'],
      ['ipv6', '::1'],
    );
    expect(body).toBe(
      '1.2.3.4-1.2.3.9\n9.255.255.255\n10.0.0.0/8\n10.0.0.2\n::1\n2001:db8::/32\n2001:db8::1\n',
    );
  });

  test('other types left out silently', () => {
    const log = new BuildLog();
    const output = renderIpEdl(
      entries(['domain', 'example.com'], ['url', 'http://example.com/'], ['ipv4', '192.0.2.1']),
      KEEP,
      log,
    );
    expect(output.body).toBe('192.0.2.1\n');
    expect(output.contentType).toBe(PLAIN_TEXT);
    expect(log.events).toEqual([]);
  });

  test('no entries give an empty body', () => {
    expect(ipBody(KEEP)).toBe('');
    expect(ipBody(COLLAPSE)).toBe('');
  });

  test('ranges kept as ranges', () => {
    expect(ipBody(KEEP, ['ipv4-range', '192.0.2.4-192.0.2.9'])).toBe('192.0.2.4-192.0.2.9\n');
  });

  test('ranges written as CIDRs', () => {
    const log = new BuildLog();
    const output = renderIpEdl(entries(['ipv4-range', '192.0.2.4-192.0.2.9']), CIDR, log);
    expect(output.body).toBe('192.0.2.4/30\n192.0.2.8/31\n');
    expect(log.events).toEqual([
      {
        action: 'rewritten',
        value: '192.0.2.4-192.0.2.9',
        result: '192.0.2.4/30 192.0.2.8/31',
        reason: 'range written as 2 CIDRs',
      },
    ]);
  });

  test('range CIDRs of one address have no /32', () => {
    expect(ipBody(CIDR, ['ipv4-range', '192.0.2.1-192.0.2.2'])).toBe('192.0.2.1\n192.0.2.2\n');
  });

  test('range CIDRs sorted among other entries', () => {
    const body = ipBody(
      CIDR,
      ['ipv4', '192.0.2.200'],
      ['ipv4-range', '192.0.2.1-192.0.2.2'],
      ['ipv4', '192.0.2.0'],
    );
    expect(body).toBe('192.0.2.0\n192.0.2.1\n192.0.2.2\n192.0.2.200\n');
  });

  test('duplicate line after range split written once', () => {
    const body = ipBody(CIDR, ['ipv4-range', '192.0.2.0-192.0.2.2'], ['ipv4', '192.0.2.2']);
    expect(body).toBe('192.0.2.0/31\n192.0.2.2\n');
  });

  test('collapse merges adjacent /25s into a /24', () => {
    const log = new BuildLog();
    const output = renderIpEdl(
      entries(['ipv4-cidr', '10.0.0.128/25'], ['ipv4-cidr', '10.0.0.0/25']),
      COLLAPSE,
      log,
    );
    expect(output.body).toBe('10.0.0.0/24\n');
    expect(log.counts).toEqual({ rewritten: 2, dropped: 0 });
    expect(log.events[0]).toEqual({
      action: 'rewritten',
      value: '10.0.0.0/25',
      result: '10.0.0.0/24',
      reason: 'merged with overlapping or adjacent entries',
    });
  });

  test('collapse merges overlapping entries and ranges', () => {
    const body = ipBody(
      COLLAPSE,
      ['ipv4-cidr', '192.168.0.0/24'],
      ['ipv4', '192.168.0.10'],
      ['ipv4-range', '192.168.0.250-192.168.1.5'],
    );
    expect(body).toBe('192.168.0.0/24\n192.168.1.0/30\n192.168.1.4/31\n');
  });

  test('collapse keeps separate addresses without /32', () => {
    const log = new BuildLog();
    const output = renderIpEdl(
      entries(['ipv4', '10.0.0.3'], ['ipv4', '10.0.0.1'], ['ipv4', '10.0.0.5']),
      COLLAPSE,
      log,
    );
    expect(output.body).toBe('10.0.0.1\n10.0.0.3\n10.0.0.5\n');
    expect(log.events).toEqual([]);
  });

  test('collapse joins two addresses into a /31', () => {
    expect(ipBody(COLLAPSE, ['ipv4', '10.0.0.3'], ['ipv4', '10.0.0.2'])).toBe('10.0.0.2/31\n');
  });

  test('collapse drops entries inside a larger block', () => {
    const log = new BuildLog();
    const output = renderIpEdl(
      entries(['ipv4', '10.1.2.3'], ['ipv4-cidr', '10.0.0.0/8'], ['ipv4-cidr', '10.1.0.0/16']),
      COLLAPSE,
      log,
    );
    expect(output.body).toBe('10.0.0.0/8\n');
    expect(log.events.map((event) => [event.value, event.result])).toEqual([
      ['10.1.0.0/16', '10.0.0.0/8'],
      ['10.1.2.3', '10.0.0.0/8'],
    ]);
  });

  test('collapse splits a lone range into CIDRs', () => {
    const log = new BuildLog();
    const output = renderIpEdl(entries(['ipv4-range', '192.0.2.4-192.0.2.9']), COLLAPSE, log);
    expect(output.body).toBe('192.0.2.4/30\n192.0.2.8/31\n');
    expect(log.events[0]?.reason).toBe('range written as 2 CIDRs');
  });

  test('collapse of IPv6 /33s into a /32', () => {
    const body = ipBody(
      COLLAPSE,
      ['ipv6-cidr', '2001:db8:8000::/33'],
      ['ipv6-cidr', '2001:db8::/33'],
      ['ipv6', '2001:db8::1'],
    );
    expect(body).toBe('2001:db8::/32\n');
  });

  test('collapse of IPv6 addresses', () => {
    const body = ipBody(
      COLLAPSE,
      ['ipv6', '2001:db8::1'],
      ['ipv6', '2001:db8::'],
      ['ipv6', '2001:db8::3'],
      ['ipv4', '192.0.2.1'],
    );
    expect(body).toBe('192.0.2.1\n2001:db8::/127\n2001:db8::3\n');
  });

  test('collapse of whole address spaces', () => {
    const body = ipBody(
      COLLAPSE,
      ['ipv4-cidr', '0.0.0.0/1'],
      ['ipv4-cidr', '128.0.0.0/1'],
      ['ipv4', '255.255.255.255'],
      ['ipv6-cidr', '::/0'],
      ['ipv6', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    );
    expect(body).toBe('0.0.0.0/0\n::/0\n');
  });

  test('collapse covers exactly the union', () => {
    // Random entries inside 10.0.0.0/20, compared address by address with a bitmap.
    let seed = 7;
    const random = (limit: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % limit;
    };
    const base = 10 * 2 ** 24;
    const covered = new Array<boolean>(4096).fill(false);
    const values: [ValueType, string][] = [];
    for (let index = 0; index < 300; index++) {
      const first = random(4096);
      const last = Math.min(4095, first + random(40));
      for (let address = first; address <= last; address++) covered[address] = true;
      const text = (offset: number): string => formatIpv4(base + offset);
      values.push(
        first === last ? ['ipv4', text(first)] : ['ipv4-range', `${text(first)}-${text(last)}`],
      );
    }

    const lines = ipBody(COLLAPSE, ...values)
      .trimEnd()
      .split('\n');
    const written = new Array<boolean>(4096).fill(false);
    let previousLast = -2;
    for (const line of lines) {
      const [address = '', prefix = '32'] = line.split('/');
      const first = (parseIpv4(address) ?? 0) - base;
      const last = first + 2 ** (32 - Number(prefix)) - 1;
      expect(first).toBeGreaterThan(previousLast);
      for (let offset = first; offset <= last; offset++) written[offset] = true;
      previousLast = last;
    }
    expect(written).toEqual(covered);
  });

  test('value not canonical is dropped and logged', () => {
    const log = new BuildLog();
    const output = renderIpEdl(entries(['ipv4', 'not-an-ip'], ['ipv4', '192.0.2.1']), KEEP, log);
    expect(output.body).toBe('192.0.2.1\n');
    expect(log.events).toEqual([
      { action: 'dropped', value: 'not-an-ip', reason: 'not a canonical ipv4 value' },
    ]);
  });

  test('golden feodotracker', () => {
    const feodo = fixtureEntries('abusech-feodotracker/ipblocklist.csv', Infinity, 1);
    const body = renderIpEdl(feodo, KEEP, new BuildLog()).body;
    expect(body).toBe(golden('edl/feodotracker-ip.txt', body));
  });

  test('golden tor-exit collapsed', () => {
    const body = renderIpEdl(
      fixtureEntries('tor-exit/tor-exit-nodes.lst', 300),
      COLLAPSE,
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('edl/tor-exit-ip-collapsed.txt', body));
  });

  test('golden ransomware tracker IPs', () => {
    const body = renderIpEdl(
      fixtureEntries('abusech-ransomwaretracker/RW_IPBL.txt', 300),
      KEEP,
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('edl/ransomware-ip.txt', body));
  });
});

describe('renderDomainEdl', () => {
  const domains = (): ViewEntry[] =>
    entries(
      ['domain', 'www.example.org'],
      ['domain', 'example.com'],
      ['url', 'http://example.net/'],
      ['domain', 'xn--bcher-kva.example'],
    );

  test('exact names in code unit order', () => {
    const output = renderDomainEdl(domains(), { wildcard: 'exact' }, new BuildLog());
    expect(output.body).toBe('example.com\nwww.example.org\nxn--bcher-kva.example\n');
    expect(output.contentType).toBe(PLAIN_TEXT);
  });

  test('wildcard names only', () => {
    const body = renderDomainEdl(domains(), { wildcard: 'wildcard' }, new BuildLog()).body;
    expect(body).toBe('*.example.com\n*.www.example.org\n*.xn--bcher-kva.example\n');
  });

  test('both names per domain', () => {
    const body = renderDomainEdl(
      entries(['domain', 'example.org'], ['domain', 'example.com']),
      { wildcard: 'both' },
      new BuildLog(),
    ).body;
    expect(body).toBe('example.com\n*.example.com\nexample.org\n*.example.org\n');
  });

  test('no entries give an empty body', () => {
    expect(renderDomainEdl([], { wildcard: 'both' }, new BuildLog()).body).toBe('');
  });

  test('golden ransomware tracker domains', () => {
    const body = renderDomainEdl(
      fixtureEntries('abusech-ransomwaretracker/RW_DOMBL.txt', 200),
      { wildcard: 'both' },
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('edl/ransomware-domain-both.txt', body));
  });
});
