import {
  JSON_CONTENT_TYPE,
  JSON_SEQ_CONTENT_TYPE,
  renderBluecoat,
  renderJson,
  renderJsonSeq,
  renderMwg,
} from '../../../src/views/formats/minemeld.js';
import { BuildLog, PLAIN_TEXT, type ViewEntry } from '../../../src/views/model.js';
import { fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const ID = 'indicator--8e2e2d2b-3c55-5a4d-8a8f-1c2d3e4f5a6b';

function entry(overrides: Partial<ViewEntry> = {}): ViewEntry {
  return {
    type: 'ipv4',
    value: '192.0.2.1',
    indicatorId: ID,
    confidence: 80,
    sources: ['abuse.ch', 'IPsum'],
    labels: ['botnet-c2'],
    indicatorTypes: ['malicious-activity'],
    tlp: 'green',
    firstSeen: 1_709_251_200_000_000,
    lastSeen: 1_709_337_600_123_000,
    ...overrides,
  };
}

const FULL_VALUE =
  '{"confidence":80,"sources":["abuse.ch","IPsum"],"labels":["botnet-c2"],' +
  '"indicator_types":["malicious-activity"],"tlp":"green",' +
  '"first_seen":"2024-03-01T00:00:00Z","last_seen":"2024-03-02T00:00:00.123Z",' +
  `"type":"ipv4","id":"${ID}"}`;

describe('renderJson', () => {
  test('array of indicator and value', () => {
    const output = renderJson(
      [entry(), entry({ type: 'domain', value: 'example.com' })],
      {},
      new BuildLog(),
    );
    expect(output.contentType).toBe(JSON_CONTENT_TYPE);
    expect(output.body).toBe(
      `[\n{"indicator":"192.0.2.1","value":${FULL_VALUE}},\n` +
        `{"indicator":"example.com","value":${FULL_VALUE.replace('"ipv4"', '"domain"')}}\n]\n`,
    );
    expect(JSON.parse(output.body)).toHaveLength(2);
  });

  test('selected columns under their names', () => {
    const body = renderJson(
      [entry()],
      {
        columns: [
          { field: 'confidence', header: 'score' },
          { field: 'sources', header: 'sources' },
        ],
      },
      new BuildLog(),
    ).body;
    expect(body).toBe(
      '[\n{"indicator":"192.0.2.1","value":{"score":80,"sources":["abuse.ch","IPsum"]}}\n]\n',
    );
  });

  test('value characters escaped', () => {
    const body = renderJson(
      [entry({ type: 'url', value: 'http://example.com/"a"\\b' })],
      {
        columns: [],
      },
      new BuildLog(),
    ).body;
    expect(body).toBe('[\n{"indicator":"http://example.com/\\"a\\"\\\\b","value":{}}\n]\n');
  });

  test('no entries give an empty array', () => {
    const body = renderJson([], {}, new BuildLog()).body;
    expect(body).toBe('[\n]\n');
    expect(JSON.parse(body)).toEqual([]);
  });
});

describe('renderJson attributes', () => {
  test('present attributes follow the defaults', () => {
    const attributed = entry({ ports: [22], description: 'ssh brute force' });

    const body = renderJson([attributed, entry()], {}, new BuildLog()).body;
    const records = JSON.parse(body) as { value: Record<string, unknown> }[];

    expect(Object.keys(records[0]!.value).slice(-3)).toEqual(['id', 'ports', 'description']);
    expect(records[0]!.value.ports).toEqual([22]);
    expect(records[0]!.value.description).toBe('ssh brute force');
    expect(Object.keys(records[1]!.value).at(-1)).toBe('id');
  });

  test('selected attribute columns', () => {
    const columns = [
      { field: 'malware_families', header: 'family' },
      { field: 'reported_first_seen', header: 'since' },
    ] as const;

    const body = renderJson([entry()], { columns }, new BuildLog()).body;

    expect(JSON.parse(body)).toEqual([
      { indicator: '192.0.2.1', value: { family: [], since: null } },
    ]);
  });
});

describe('renderJsonSeq', () => {
  test('record separator, JSON and line feed per entry', () => {
    const output = renderJsonSeq(
      [entry(), entry({ value: '192.0.2.2' })],
      { columns: [{ field: 'tlp', header: 'tlp' }] },
      new BuildLog(),
    );
    expect(output.contentType).toBe(JSON_SEQ_CONTENT_TYPE);
    expect(output.body).toBe(
      '\u001e{"indicator":"192.0.2.1","value":{"tlp":"green"}}\n' +
        '\u001e{"indicator":"192.0.2.2","value":{"tlp":"green"}}\n',
    );
  });

  test('no entries give an empty body', () => {
    expect(renderJsonSeq([], {}, new BuildLog()).body).toBe('');
  });
});

describe('renderMwg', () => {
  test('string list with sources as comment', () => {
    const output = renderMwg(
      [entry(), entry({ type: 'domain', value: 'example.com', sources: [] })],
      { type: 'string' },
      new BuildLog(),
    );
    expect(output.contentType).toBe(PLAIN_TEXT);
    expect(output.body).toBe('type=string\n"192.0.2.1" "abuse.ch,IPsum"\n"example.com" ""\n');
  });

  test('quotes and backslashes escaped', () => {
    const body = renderMwg(
      [entry({ type: 'url', value: 'http://example.com/a"b\\c', sources: ['Feed "X"'] })],
      { type: 'string' },
      new BuildLog(),
    ).body;
    expect(body).toBe('type=string\n"http://example.com/a\\"b\\\\c" "Feed \\"X\\""\n');
  });

  test('ip list splits ranges and leaves out other types', () => {
    const log = new BuildLog();
    const body = renderMwg(
      [
        entry({ type: 'ipv4-range', value: '192.0.2.1-192.0.2.2', sources: ['a'] }),
        entry({ type: 'domain', value: 'example.com' }),
        entry({ type: 'ipv6-cidr', value: '2001:db8::/32', sources: ['b'] }),
      ],
      { type: 'ip' },
      log,
    ).body;
    expect(body).toBe('type=ip\n"192.0.2.1" "a"\n"192.0.2.2" "a"\n"2001:db8::/32" "b"\n');
    expect(log.counts.rewritten).toBe(1);
  });

  test('no entries give the type line', () => {
    expect(renderMwg([], { type: 'string' }, new BuildLog()).body).toBe('type=string\n');
  });

  test('golden ransomware tracker domains', () => {
    const body = renderMwg(
      fixtureEntries('abusech-ransomwaretracker/RW_DOMBL.txt', 100),
      { type: 'string' },
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('minemeld/ransomware-domain.mwg.txt', body));
  });
});

describe('renderBluecoat', () => {
  test('category of URLs, domains and addresses', () => {
    const log = new BuildLog();
    const output = renderBluecoat(
      [
        entry({ type: 'url', value: 'https://user@example.com:8443/a?b=1' }),
        entry({ type: 'domain', value: 'example.org' }),
        entry({ type: 'ipv4', value: '192.0.2.1' }),
        entry({ type: 'ipv4-cidr', value: '192.0.2.0/24' }),
        entry({ type: 'url', value: 'http://example.net' }),
      ],
      { category: 'ransomware-url' },
      log,
    );
    expect(output.contentType).toBe(PLAIN_TEXT);
    expect(output.body).toBe(
      'define category ransomware-url\nexample.com:8443/a?b=1\nexample.org\n192.0.2.1\nexample.net/\nend\n',
    );
    expect(log.events).toEqual([
      {
        action: 'rewritten',
        value: 'https://user@example.com:8443/a?b=1',
        result: 'example.com:8443/a?b=1',
        reason: 'userinfo removed',
      },
    ]);
  });

  test('no entries give an empty category', () => {
    expect(renderBluecoat([], { category: 'url' }, new BuildLog()).body).toBe(
      'define category url\nend\n',
    );
  });

  test('invalid category name throws', () => {
    expect(() => renderBluecoat([], { category: 'a b\nend' }, new BuildLog())).toThrow(
      'invalid Blue Coat category name "a b\\nend": expected 1-64 letters, digits, "_", "." or "-"',
    );
  });
});

describe('minemeld golden', () => {
  test('json of tor exit nodes', () => {
    const body = renderJson(
      fixtureEntries('tor-exit/tor-exit-nodes.lst', 20),
      {},
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('minemeld/tor-exit.json', body));
  });

  test('bluecoat of ransomware tracker URLs', () => {
    const entries = fixtureEntries('abusech-ransomwaretracker/RW_URLBL.txt', 50);
    const body = renderBluecoat(entries, { category: 'url' }, new BuildLog()).body;
    expect(body).toBe(golden('minemeld/ransomware-url.bluecoat.txt', body));
  });
});
