import { renderJsonList } from '../../../src/views/formats/export.js';
import { BuildLog, type ViewEntry } from '../../../src/views/model.js';
import { fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const ENTRY: ViewEntry = {
  type: 'domain',
  value: 'evil.example',
  indicatorId: 'indicator--00000000-0000-5000-8000-000000000000',
  confidence: 85,
  sources: ['abuse.ch', 'IPsum'],
  labels: [],
  indicatorTypes: ['malicious-activity'],
  tlp: 'amber+strict',
  firstSeen: 1_709_251_200_000_000,
  lastSeen: 1_709_337_600_500_000,
};

describe('renderJsonList', () => {
  test('one indicator', () => {
    const output = renderJsonList([ENTRY], new BuildLog());
    expect(output.body).toBe(
      '{"indicators":[\n' +
        '{"value":"evil.example","type":"domain","id":"indicator--00000000-0000-5000-8000-000000000000",' +
        '"confidence":85,"sources":["abuse.ch","IPsum"],"labels":[],"indicator_types":["malicious-activity"],' +
        '"tlp":"amber+strict","first_seen":"2024-03-01T00:00:00Z","last_seen":"2024-03-02T00:00:00.500Z"}\n' +
        ']}\n',
    );
    expect(output.contentType).toBe('application/json');
  });

  test('order kept', () => {
    const second = { ...ENTRY, value: 'a.example' };
    const parsed = JSON.parse(renderJsonList([ENTRY, second], new BuildLog()).body) as {
      indicators: { value: string }[];
    };
    expect(parsed.indicators.map((indicator) => indicator.value)).toEqual([
      'evil.example',
      'a.example',
    ]);
  });

  test('special characters escaped', () => {
    const odd = { ...ENTRY, value: 'http://x.example/"\\\n\u2028', sources: ['пример'] };
    const parsed = JSON.parse(renderJsonList([odd], new BuildLog()).body) as {
      indicators: { value: string; sources: string[] }[];
    };
    expect(parsed.indicators[0]?.value).toBe(odd.value);
    expect(parsed.indicators[0]?.sources).toEqual(['пример']);
  });

  test('empty document', () => {
    expect(renderJsonList([], new BuildLog()).body).toBe('{"indicators":[]}\n');
  });

  test('tor exit golden', () => {
    const body = renderJsonList(
      fixtureEntries('tor-exit/tor-exit-nodes.lst', 50),
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('export/tor-exit.json', body));
    expect(JSON.parse(body)).toHaveProperty('indicators');
  });
});
