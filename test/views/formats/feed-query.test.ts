import type { ValueType } from '../../../src/processing/index.js';
import {
  DEFAULT_EDL_OPTIONS,
  FeedQueryError,
  MAX_FEED_COLUMNS,
  parseFeedQuery,
  renderFeed,
  type EdlViewKind,
  type FeedQuery,
  type FeedView,
} from '../../../src/views/formats/feed-query.js';
import { BuildLog, type ViewEntry } from '../../../src/views/model.js';
import { entryFor, fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

function parse(query: string): FeedQuery {
  return parseFeedQuery(new URLSearchParams(query));
}

/** Returns the error that parsing `query` throws, or undefined when it parses. */
function parseError(query: string): FeedQueryError | undefined {
  try {
    parse(query);
  } catch (error) {
    if (error instanceof FeedQueryError) return error;
    throw error;
  }
  return undefined;
}

function view(kind: EdlViewKind, defaults: Partial<FeedView['defaults']> = {}): FeedView {
  return { kind, name: `${kind}-view`, defaults: { ...DEFAULT_EDL_OPTIONS, ...defaults } };
}

function entries(...values: [ValueType, string][]): ViewEntry[] {
  return values.map(([type, value], index) => entryFor(type, value, index));
}

function feed(list: ViewEntry[], feedView: FeedView, query: string): string {
  return renderFeed(list, feedView, parse(query), new BuildLog()).body;
}

/** Returns the error that rendering throws, or undefined when it renders. */
function feedError(feedView: FeedView, query: string): FeedQueryError | undefined {
  try {
    renderFeed([], feedView, parse(query), new BuildLog());
  } catch (error) {
    if (error instanceof FeedQueryError) return error;
    throw error;
  }
  return undefined;
}

const IPS = (): ViewEntry[] =>
  entries(
    ['ipv4', '192.0.2.3'],
    ['ipv4-range', '192.0.2.4-192.0.2.9'],
    ['ipv4', '192.0.2.1'],
    ['ipv6', '2001:db8::1'],
  );

describe('parseFeedQuery', () => {
  test('empty query', () => {
    expect(parse('')).toEqual({ offset: 0, descending: false, parameters: [] });
  });

  test('every parameter parsed', () => {
    expect(
      parse(
        'v=csv&s=5&n=10&d&tr=1&sum=0&f=indicator&f=confidence|Score&h=0&ubom=1&t=ip&sp=1&di=0&nsl=1&cd=bad-urls',
      ),
    ).toEqual({
      format: 'csv',
      offset: 5,
      limit: 10,
      descending: true,
      rangesToCidrs: true,
      collapse: false,
      columns: [
        { field: 'indicator', header: 'indicator' },
        { field: 'confidence', header: 'Score' },
      ],
      csvHeader: false,
      bom: true,
      mwgType: 'ip',
      stripPort: true,
      dropInvalidWildcards: false,
      noTrailingSlash: true,
      category: 'bad-urls',
      parameters: ['v', 's', 'n', 'd', 'tr', 'sum', 'f', 'h', 'ubom', 't', 'sp', 'di', 'nsl', 'cd'],
    });
  });

  test('v accepts each format', () => {
    for (const format of ['json', 'json-seq', 'csv', 'mwg', 'panosurl', 'bluecoat']) {
      expect(parse(`v=${format}`).format).toBe(format);
    }
  });

  test('v rejects an unknown format', () => {
    const error = parseError('v=xml');
    expect(error?.status).toBe(400);
    expect(error?.parameter).toBe('v');
    expect(error?.message).toBe(
      'invalid value "xml" for query parameter "v": expected one of json, json-seq, csv, mwg, panosurl, bluecoat',
    );
  });

  test('s accepts 0 and rejects bad numbers', () => {
    expect(parse('s=0').offset).toBe(0);
    expect(parse('s=120').offset).toBe(120);
    for (const bad of ['-1', '1.5', 'abc', '', '01', '+3', '1e3', '99999999999999999999']) {
      expect(parseError(`s=${encodeURIComponent(bad)}`)?.message).toBe(
        `invalid value ${JSON.stringify(bad)} for query parameter "s": expected an integer of 0 or more, in decimal digits`,
      );
    }
  });

  test('n accepts 1 and rejects 0', () => {
    expect(parse('n=1').limit).toBe(1);
    expect(parseError('n=0')?.message).toBe(
      'invalid value "0" for query parameter "n": expected an integer of 1 or more, in decimal digits',
    );
    expect(parseError('n=x')?.parameter).toBe('n');
  });

  test('d present, 1 or 0', () => {
    expect(parse('d').descending).toBe(true);
    expect(parse('d=').descending).toBe(true);
    expect(parse('d=1').descending).toBe(true);
    expect(parse('d=0').descending).toBe(false);
    expect(parseError('d=yes')?.message).toBe(
      'invalid value "yes" for query parameter "d": expected no value or 1 for descending order, or 0 for ascending',
    );
  });

  test('flags accept 0 and 1 only', () => {
    const fields: Record<string, keyof FeedQuery> = {
      tr: 'rangesToCidrs',
      sum: 'collapse',
      h: 'csvHeader',
      ubom: 'bom',
      sp: 'stripPort',
      di: 'dropInvalidWildcards',
      nsl: 'noTrailingSlash',
    };
    for (const [name, field] of Object.entries(fields)) {
      expect(parse(`${name}=1`)[field]).toBe(true);
      expect(parse(`${name}=0`)[field]).toBe(false);
      expect(parseError(`${name}=true`)?.message).toBe(
        `invalid value "true" for query parameter "${name}": expected 0 or 1`,
      );
      expect(parseError(name)?.parameter).toBe(name);
    }
  });

  test('f with and without column name', () => {
    expect(parse('f=tlp&f=first_seen|First%20seen&f=indicator|a|b').columns).toEqual([
      { field: 'tlp', header: 'tlp' },
      { field: 'first_seen', header: 'First seen' },
      { field: 'indicator', header: 'a|b' },
    ]);
  });

  test('f rejects an unknown field', () => {
    expect(parseError('f=score')?.message).toBe(
      'invalid value "score" for query parameter "f": expected one of indicator, type, confidence, sources, labels, indicator_types, tlp, first_seen, last_seen, id, ports, malware_families, description, reported_first_seen, reported_last_seen',
    );
  });

  test('f rejects a bad column name', () => {
    expect(parseError('f=tlp|')?.message).toBe(
      'invalid value "tlp|" for query parameter "f": expected field|Column with a column name of 1-64 characters and no control characters',
    );
    expect(parseError('f=tlp|a%0Ab')?.parameter).toBe('f');
    expect(parseError(`f=tlp|${'x'.repeat(65)}`)?.parameter).toBe('f');
  });

  test('f rejects a column name used twice', () => {
    expect(parseError('f=tlp|x&f=id|x')?.message).toBe(
      'invalid value "id|x" for query parameter "f": expected a column name not used by another "f" value',
    );
  });

  test('f rejects too many columns', () => {
    const many = Array.from({ length: MAX_FEED_COLUMNS + 1 }, (_, index) => `f=id|c${index}`);
    expect(parseError(many.join('&'))?.message).toBe(
      `query parameter "f" is given ${MAX_FEED_COLUMNS + 1} times: at most ${MAX_FEED_COLUMNS} columns are allowed`,
    );
  });

  test('t accepts string and ip', () => {
    expect(parse('t=string').mwgType).toBe('string');
    expect(parse('t=ip').mwgType).toBe('ip');
    expect(parseError('t=regex')?.message).toBe(
      'invalid value "regex" for query parameter "t": expected one of string, ip',
    );
  });

  test('cd rejects a category with spaces', () => {
    expect(parse('cd=Malware_URLs').category).toBe('Malware_URLs');
    expect(parseError('cd=bad%20name')?.message).toBe(
      'invalid value "bad name" for query parameter "cd": expected 1-64 letters, digits, "_", "." or "-"',
    );
  });

  test('unknown parameter rejected', () => {
    expect(parseError('x=1')?.message).toBe(
      'unknown query parameter "x": accepted parameters are v, s, n, d, tr, sum, f, h, ubom, t, sp, di, nsl, cd',
    );
  });

  test('cache-busting parameters ignored', () => {
    expect(parse('_=1700000000&cb=abc&cb=def')).toEqual({
      offset: 0,
      descending: false,
      parameters: [],
    });
  });

  test('repeated parameter rejected', () => {
    expect(parseError('n=1&n=2')?.message).toBe(
      'query parameter "n" is given 2 times: give it once',
    );
    expect(parseError('v=csv&v=csv')?.parameter).toBe('v');
  });
});

describe('renderFeed', () => {
  test('IP view with its defaults', () => {
    expect(feed(IPS(), view('edl-ip'), '')).toBe(
      '192.0.2.1\n192.0.2.3\n192.0.2.4-192.0.2.9\n2001:db8::1\n',
    );
    expect(feed(IPS(), view('edl-ip', { collapse: true }), '')).toBe(
      '192.0.2.1\n192.0.2.3\n192.0.2.4/30\n192.0.2.8/31\n2001:db8::1\n',
    );
  });

  test('tr writes ranges as CIDRs', () => {
    expect(feed(IPS(), view('edl-ip'), 'tr=1')).toBe(
      '192.0.2.1\n192.0.2.3\n192.0.2.4/30\n192.0.2.8/31\n2001:db8::1\n',
    );
    expect(feed(IPS(), view('edl-ip', { ranges: 'cidr' }), 'tr=0')).toBe(
      '192.0.2.1\n192.0.2.3\n192.0.2.4-192.0.2.9\n2001:db8::1\n',
    );
  });

  test('sum collapses the IP list', () => {
    expect(feed(IPS(), view('edl-ip'), 'sum=1')).toBe(
      '192.0.2.1\n192.0.2.3\n192.0.2.4/30\n192.0.2.8/31\n2001:db8::1\n',
    );
    const adjacent = entries(['ipv4', '192.0.2.2'], ['ipv4', '192.0.2.3']);
    expect(feed(adjacent, view('edl-ip'), 'sum=1')).toBe('192.0.2.2/31\n');
    expect(feed(adjacent, view('edl-ip', { collapse: true }), 'sum=0')).toBe(
      '192.0.2.2\n192.0.2.3\n',
    );
  });

  test('domain view with its wildcard default', () => {
    const list = entries(['domain', 'example.com']);
    expect(feed(list, view('edl-domain'), '')).toBe('example.com\n');
    expect(feed(list, view('edl-domain', { wildcard: 'both' }), '')).toBe(
      'example.com\n*.example.com\n',
    );
  });

  test('URL view with sp, di and nsl', () => {
    const list = entries(
      ['url', 'http://example.com:8080/a'],
      ['url', 'http://example.com/x*y'],
      ['url', 'https://example.org/'],
    );
    const urlView = view('edl-url');
    expect(feed(list, urlView, '')).toBe('example.com/*\nexample.org/\n');
    expect(feed(list, urlView, 'sp=1')).toBe('example.com/*\nexample.com/a\nexample.org/\n');
    expect(feed(list, urlView, 'di=1')).toBe('example.org/\n');
    expect(feed(list, urlView, 'nsl=1')).toBe('example.com/*\nexample.org\n');
    expect(feed(list, view('edl-url', { port: 'strip' }), 'sp=0')).toBe(
      'example.com/*\nexample.org/\n',
    );
  });

  test('v=panosurl on a domain view', () => {
    const list = entries(['domain', 'example.com']);
    expect(feed(list, view('edl-domain'), 'v=panosurl&nsl=1')).toBe('example.com\n');
  });

  test('d, s and n select entries and lines', () => {
    const list = entries(
      ['ipv4', '192.0.2.1'],
      ['ipv4', '192.0.2.2'],
      ['ipv4', '192.0.2.3'],
      ['ipv4', '192.0.2.4'],
    );
    const ipView = view('edl-ip');
    expect(feed(list, ipView, 'v=csv&h=0')).toBe(
      '192.0.2.1\r\n192.0.2.2\r\n192.0.2.3\r\n192.0.2.4\r\n',
    );
    expect(feed(list, ipView, 'v=csv&h=0&s=1&n=2')).toBe('192.0.2.2\r\n192.0.2.3\r\n');
    expect(feed(list, ipView, 'v=csv&h=0&d&n=3')).toBe('192.0.2.4\r\n192.0.2.3\r\n192.0.2.2\r\n');
    expect(feed(list, ipView, 'v=csv&h=0&d&s=3')).toBe('192.0.2.1\r\n');
    expect(feed(list, ipView, 'v=csv&h=0&s=10')).toBe('');
    // The IP list sorts its lines, so d, s and n apply to the lines as written.
    expect(feed(list, ipView, 'd&n=2')).toBe('192.0.2.4\n192.0.2.3\n');
    expect(feed(list, ipView, 's=1&n=2')).toBe('192.0.2.2\n192.0.2.3\n');
    expect(feed(list, ipView, 'd&s=3')).toBe('192.0.2.1\n');
    expect(feed(list, ipView, 's=9')).toBe('');
  });

  test('slices follow numeric order', () => {
    // In text order 192.0.2.10 comes before 192.0.2.9; the list is numeric.
    const list = entries(['ipv4', '192.0.2.10'], ['ipv4', '192.0.2.9'], ['ipv4', '192.0.2.100']);
    expect(feed(list, view('edl-ip'), 'n=2')).toBe('192.0.2.9\n192.0.2.10\n');
    expect(feed(list, view('edl-ip'), 'd&n=1')).toBe('192.0.2.100\n');
  });

  test('csv with columns, header and BOM', () => {
    const list = entries(['ipv4', '192.0.2.1']);
    const output = renderFeed(
      list,
      view('edl-ip'),
      parse('v=csv&f=indicator|IP&f=confidence&ubom=1'),
      new BuildLog(),
    );
    expect(output.body).toBe('\uFEFFIP,confidence\r\n192.0.2.1,0\r\n');
    expect(output.contentType).toBe('text/csv; charset=utf-8; header=present');
    expect(feed(list, view('edl-ip'), 'v=csv')).toBe('indicator\r\n192.0.2.1\r\n');
  });

  test('json with tr lists each CIDR of a range', () => {
    const list = entries(['ipv4-range', '192.0.2.1-192.0.2.2']);
    expect(feed(list, view('edl-ip'), 'v=json&tr=1&f=type')).toBe(
      '[\n{"indicator":"192.0.2.1","value":{"type":"ipv4"}},\n' +
        '{"indicator":"192.0.2.2","value":{"type":"ipv4"}}\n]\n',
    );
    expect(feed(list, view('edl-ip', { ranges: 'cidr' }), 'v=json-seq&f=indicator')).toBe(
      '\u001e{"indicator":"192.0.2.1","value":{"indicator":"192.0.2.1"}}\n' +
        '\u001e{"indicator":"192.0.2.2","value":{"indicator":"192.0.2.2"}}\n',
    );
  });

  test('mwg list type from t', () => {
    const list = entries(['ipv4', '192.0.2.1'], ['domain', 'example.com']);
    expect(feed(list, view('edl-domain'), 'v=mwg')).toBe(
      'type=string\n"192.0.2.1" "abuse.ch"\n"example.com" "IPsum,abuse.ch"\n',
    );
    expect(feed(list, view('edl-domain'), 'v=mwg&t=ip')).toBe('type=ip\n"192.0.2.1" "abuse.ch"\n');
  });

  test('bluecoat category from the view name or cd', () => {
    const list = entries(['url', 'http://example.com/a']);
    expect(feed(list, view('edl-url'), 'v=bluecoat')).toBe(
      'define category edl-url-view\nexample.com/a\nend\n',
    );
    expect(feed(list, view('edl-url'), 'v=bluecoat&cd=Phishing')).toBe(
      'define category Phishing\nexample.com/a\nend\n',
    );
  });

  test('parameter of another format rejected', () => {
    expect(feedError(view('edl-ip'), 'v=json&h=0')?.message).toBe(
      'query parameter "h" has no effect on v=json of this edl-ip view, because it applies only to v=csv. Remove it.',
    );
    expect(feedError(view('edl-domain'), 'tr=1')?.message).toBe(
      'query parameter "tr" has no effect on the domain list of this edl-domain view, because it applies only to the IP list, v=json, v=json-seq, v=csv, v=mwg. Remove it.',
    );
    expect(feedError(view('edl-ip'), 'sp=1')?.message).toBe(
      'query parameter "sp" has no effect on the IP list of this edl-ip view, because it applies only to the URL list or v=panosurl. Remove it.',
    );
    expect(feedError(view('edl-ip'), 'v=csv&sum=1')?.parameter).toBe('sum');
    expect(feedError(view('edl-url'), 'f=id')?.parameter).toBe('f');
    expect(feedError(view('edl-url'), 'v=json&t=ip')?.parameter).toBe('t');
    expect(feedError(view('edl-url'), 'v=mwg&cd=x')?.parameter).toBe('cd');
    expect(feedError(view('edl-url'), 'v=bluecoat&nsl=1')?.parameter).toBe('nsl');
  });

  test('parameters of every format accepted', () => {
    expect(feedError(view('edl-ip'), 'v=json&s=1&n=2&d&tr=0&f=id')).toBeUndefined();
    expect(feedError(view('edl-domain'), 'v=csv&h=1&ubom=0&tr=1&f=id')).toBeUndefined();
    expect(feedError(view('edl-url'), 'v=mwg&t=string&tr=1')).toBeUndefined();
    expect(feedError(view('edl-ip'), 'v=panosurl&sp=1&di=1&nsl=1')).toBeUndefined();
    expect(feedError(view('edl-domain'), 'v=bluecoat&cd=x')).toBeUndefined();
  });

  test('golden ransomware tracker URLs as CSV', () => {
    const list = fixtureEntries('abusech-ransomwaretracker/RW_URLBL.txt', 40);
    const body = feed(
      list,
      view('edl-url'),
      'v=csv&f=indicator|url&f=confidence&f=last_seen&d&n=20',
    );
    expect(body).toBe(golden('feed/ransomware-url-last20.csv', body));
  });
});
