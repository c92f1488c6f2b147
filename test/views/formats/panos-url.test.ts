import type { ValueType } from '../../../src/processing/index.js';
import {
  PANOS_URL_MAX_LENGTH,
  renderPanosUrlEdl,
  type PanosUrlOptions,
} from '../../../src/views/formats/panos-url.js';
import { BuildLog, PLAIN_TEXT, type ViewEntry } from '../../../src/views/model.js';
import { entryFor, fixtureEntries } from '../fixture-entries.js';
import { golden } from '../golden.js';

const DEFAULTS: PanosUrlOptions = {
  port: 'drop',
  trailingSlash: true,
  invalidWildcards: 'rewrite',
};

function urls(...values: string[]): ViewEntry[] {
  return values.map((value, index) => entryFor('url', value, index));
}

function render(
  entries: ViewEntry[],
  overrides: Partial<PanosUrlOptions> = {},
): { body: string; log: BuildLog } {
  const log = new BuildLog();
  const output = renderPanosUrlEdl(entries, { ...DEFAULTS, ...overrides }, log);
  expect(output.contentType).toBe(PLAIN_TEXT);
  return { body: output.body, log };
}

describe('renderPanosUrlEdl', () => {
  test('schemes http, https and ftp removed', () => {
    const { body, log } = render(
      urls(
        'http://example.com/a',
        'https://secure.example.com/b',
        'ftp://files.example.com/pub/x.zip',
      ),
    );
    expect(body).toBe('example.com/a\nfiles.example.com/pub/x.zip\nsecure.example.com/b\n');
    expect(log.events).toEqual([]);
  });

  test('same entry of two schemes written once', () => {
    const { body } = render(urls('https://example.com/a', 'http://example.com/a'));
    expect(body).toBe('example.com/a\n');
  });

  test('path case and query kept', () => {
    const { body } = render(urls('http://example.com/Dir/File.php?id=5&x=Y+z;q'));
    expect(body).toBe('example.com/Dir/File.php?id=5&x=Y+z;q\n');
  });

  test('trailing slash on host-only entries', () => {
    const { body } = render([
      ...urls('http://example.com/', 'http://example.com/?q=1'),
      entryFor('domain', 'example.org', 9),
    ]);
    expect(body).toBe('example.com/\nexample.com/?q=1\nexample.org/\n');
  });

  test('no trailing slash when turned off', () => {
    const { body } = render(
      [
        ...urls('http://example.com/', 'http://example.com/a/'),
        entryFor('domain', 'example.org', 9),
      ],
      { trailingSlash: false },
    );
    expect(body).toBe('example.com\nexample.com/a/\nexample.org\n');
  });

  test('port stripped', () => {
    const { body, log } = render(urls('http://example.com:8080/a'), { port: 'strip' });
    expect(body).toBe('example.com/a\n');
    expect(log.events).toEqual([
      {
        action: 'rewritten',
        value: 'http://example.com:8080/a',
        result: 'example.com/a',
        reason: 'port 8080 stripped',
      },
    ]);
  });

  test('entry with port dropped', () => {
    const { body, log } = render(urls('http://example.com:8080/a', 'http://example.net/'));
    expect(body).toBe('example.net/\n');
    expect(log.events).toEqual([
      {
        action: 'dropped',
        value: 'http://example.com:8080/a',
        reason: 'port 8080: PAN-OS URL entries cannot match a port',
      },
    ]);
  });

  test('IPv6 host with port stripped', () => {
    const { body } = render(urls('http://[2001:db8::1]:8443/x'), { port: 'strip' });
    expect(body).toBe('[2001:db8::1]/x\n');
  });

  test('IPv6 host without port kept', () => {
    const { body, log } = render(urls('http://[2001:db8::1]/x'));
    expect(body).toBe('[2001:db8::1]/x\n');
    expect(log.events).toEqual([]);
  });

  test('userinfo removed', () => {
    const { body, log } = render(urls('http://user:secret@example.com:81/a'), { port: 'strip' });
    expect(body).toBe('example.com/a\n');
    expect(log.events[0]?.reason).toBe('userinfo removed, port 81 stripped');
  });

  test('whole wildcard tokens kept', () => {
    const { body, log } = render(
      urls('http://example.com/*/x', 'http://example.com/^/y?a=*&b=^', 'http://*.example.com/z'),
    );
    expect(body).toBe('*.example.com/z\nexample.com/*/x\nexample.com/^/y?a=*&b=^\n');
    expect(log.events).toEqual([]);
  });

  test('invalid wildcard tokens rewritten', () => {
    const { body, log } = render(urls('http://example.com/a*b/c?x=1^2&y=**'));
    expect(body).toBe('example.com/*/c?x=*&y=*\n');
    expect(log.events).toEqual([
      {
        action: 'rewritten',
        value: 'http://example.com/a*b/c?x=1^2&y=**',
        result: 'example.com/*/c?x=*&y=*',
        reason: 'token "a*b", "1^2", "**" replaced by *',
      },
    ]);
  });

  test('invalid wildcard tokens dropped', () => {
    const { body, log } = render(urls('http://example.com/a*b', 'http://example.com/*'), {
      invalidWildcards: 'drop',
    });
    expect(body).toBe('example.com/*\n');
    expect(log.events).toEqual([
      {
        action: 'dropped',
        value: 'http://example.com/a*b',
        reason: 'token "a*b": PAN-OS accepts * and ^ only as a whole token',
      },
    ]);
  });

  test('entry of 255 characters kept', () => {
    const host = 'example.com/';
    const path = 'a'.repeat(PANOS_URL_MAX_LENGTH - host.length);
    const { body, log } = render(urls(`http://${host}${path}`));
    expect(body).toBe(`${host}${path}\n`);
    expect(body.length).toBe(256);
    expect(log.events).toEqual([]);
  });

  test('entry of 256 characters dropped', () => {
    const host = 'example.com/';
    const value = `http://${host}${'a'.repeat(PANOS_URL_MAX_LENGTH + 1 - host.length)}`;
    const { body, log } = render(urls(value));
    expect(body).toBe('');
    expect(log.events).toEqual([
      { action: 'dropped', value, reason: '256 characters, over the PAN-OS maximum of 255' },
    ]);
  });

  test('trailing slash counted in the length', () => {
    const host = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
    expect(host.length).toBe(255);
    expect(render([entryFor('domain', host, 0)]).body).toBe('');
    expect(render([entryFor('domain', host, 0)], { trailingSlash: false }).body).toBe(`${host}\n`);
  });

  test('IDN host in punycode kept', () => {
    const { body } = render(urls('https://xn--bcher-kva.example/kaufen'));
    expect(body).toBe('xn--bcher-kva.example/kaufen\n');
  });

  test('other types left out silently', () => {
    const types: [ValueType, string][] = [
      ['ipv4', '192.0.2.1'],
      ['sha256', 'a'.repeat(64)],
    ];
    const { body, log } = render(types.map(([type, value], index) => entryFor(type, value, index)));
    expect(body).toBe('');
    expect(log.events).toEqual([]);
  });

  test('value without scheme dropped', () => {
    const { body, log } = render(urls('example.com/a'));
    expect(body).toBe('');
    expect(log.events[0]?.reason).toBe('not a URL of the form scheme://host/path');
  });

  test('golden ransomware tracker URLs', () => {
    const body = renderPanosUrlEdl(
      fixtureEntries('abusech-ransomwaretracker/RW_URLBL.txt', 300),
      DEFAULTS,
      new BuildLog(),
    ).body;
    expect(body).toBe(golden('edl/ransomware-url-panos.txt', body));
  });
});
