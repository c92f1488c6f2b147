import { readFileSync } from 'node:fs';

import {
  judgeBody,
  MAX_LINE_LENGTH,
  parseTextList,
  type TextListStats,
} from '../../src/sources/index.js';

const FEEDS = new URL('../fixtures/feeds/', import.meta.url);

function readFeed(path: string): string {
  return readFileSync(new URL(path, FEEDS), 'utf8');
}

/** Non-empty lines that do not start with `#`, counted without the parser. */
function dataLines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

async function* chunksOf(text: string | Buffer, size: number): AsyncIterable<Buffer> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; offset += size) {
    yield bytes.subarray(offset, offset + size);
  }
}

function statsWith(overrides: Partial<TextListStats>): TextListStats {
  return {
    lines: 10,
    blank: 0,
    comments: 0,
    unmatched: 0,
    valid: 10,
    invalid: 0,
    duplicates: 0,
    invalidExamples: [],
    looksLikeHtml: false,
    ...overrides,
  };
}

describe('parseTextList fixtures', () => {
  test('Ransomware Tracker IPs', async () => {
    const text = readFeed('abusech-ransomwaretracker/RW_IPBL.txt');
    const expected = dataLines(text);
    expect(expected).toHaveLength(316);
    const { entries, stats } = await parseTextList(chunksOf(text, 1000), { valueType: 'ipv4' });
    expect(stats.valid).toBe(316);
    expect(stats.invalid).toBe(0);
    expect(stats.comments).toBe(text.split('\n').filter((line) => line.startsWith('#')).length);
    expect(entries.map((entry) => entry.value)).toEqual(expected);
    expect(new Set(entries.map((entry) => entry.type))).toEqual(new Set(['ipv4']));
  });

  test('Ransomware Tracker domains', async () => {
    const text = readFeed('abusech-ransomwaretracker/RW_DOMBL.txt');
    const { entries, stats } = await parseTextList(text, { valueType: 'domain' });
    expect(stats.valid).toBe(1903);
    expect(stats.invalid).toBe(0);
    expect(entries.map((entry) => entry.value)).toEqual(dataLines(text));
  });

  test('Ransomware Tracker URLs', async () => {
    const text = readFeed('abusech-ransomwaretracker/RW_URLBL.txt');
    const lines = dataLines(text);
    const { entries, stats } = await parseTextList(chunksOf(text, 4096), { valueType: 'url' });
    expect(stats.valid).toBe(lines.length);
    expect(stats.invalid).toBe(0);
    expect(stats.duplicates).toBe(0);
    // Only the scheme and host change: upper-case hosts are lowered, paths stay.
    const expected = lines.map((line) =>
      line.replace(/^(http:\/\/[^/]*)/, (host) => host.toLowerCase()),
    );
    expect(entries.map((entry) => entry.value)).toEqual(expected);
    expect(entries.map((entry) => entry.value)).toContain('http://avtoresurs.net/n5rz8w');
    expect(entries.map((entry) => entry.value)).toContain(
      'http://cukiernia_izabela.republika.pl/j988765',
    );
  });

  test('IPsum level 5 auto-detected', async () => {
    const text = readFeed('stamparm-ipsum/levels/5.txt');
    const { entries, stats } = await parseTextList(chunksOf(text, 777));
    expect(stats.lines).toBe(1413);
    expect(stats.valid).toBe(1413);
    expect(entries.every((entry) => entry.type === 'ipv4')).toBe(true);
  });

  test('Tor exits', async () => {
    const text = readFeed('tor-exit/tor-exit-nodes.lst');
    const { stats } = await parseTextList(text, { valueType: 'auto' });
    expect(stats.valid).toBe(dataLines(text).length);
    expect(stats.valid).toBe(1746);
  });

  test('ESET sha256', async () => {
    const text = readFeed('eset-malware-ioc/bandook/samples.sha256');
    const { entries, stats } = await parseTextList(text);
    expect(stats.valid).toBe(136);
    expect(entries.every((entry) => entry.type === 'sha256')).toBe(true);
    expect(entries.map((entry) => entry.value)).toEqual(dataLines(text));
  });

  test('Feodo Tracker CSV with extract', async () => {
    const text = readFeed('abusech-feodotracker/ipblocklist.csv');
    const rows = dataLines(text).slice(1);
    const expected = rows.map((row) => row.split(',')[1]?.replace(/"/g, ''));
    const { entries, stats } = await parseTextList(chunksOf(text, 64), {
      valueType: 'ipv4',
      extract: /^"[^"]*","([0-9][^"]*)"/,
    });
    expect(stats.unmatched).toBe(1);
    expect(stats.valid).toBe(28);
    expect(stats.invalid).toBe(0);
    expect(entries.map((entry) => entry.value)).toEqual(expected);
  });
});

describe('parseTextList awkward input', () => {
  test('BOM and CRLF', async () => {
    const { entries, stats } = await parseTextList(
      '\uFEFF198.51.100.1\r\n# note\r\n\r\n198.51.100.2\r\n',
    );
    expect(entries.map((entry) => entry.value)).toEqual(['198.51.100.1', '198.51.100.2']);
    expect(stats).toMatchObject({ lines: 4, comments: 1, blank: 1, valid: 2, invalid: 0 });
  });

  test('last line without newline', async () => {
    const { entries } = await parseTextList('198.51.100.1\n198.51.100.2');
    expect(entries.map((entry) => entry.value)).toEqual(['198.51.100.1', '198.51.100.2']);
  });

  test('every chunk boundary', async () => {
    const text = '\uFEFF198.51.100.1\r\nbücher.example\r\n# c\r\n198.51.100.2\t7\r\n';
    const bytes = Buffer.from(text, 'utf8');
    for (let size = 1; size <= bytes.length; size += 1) {
      const { entries, stats } = await parseTextList(chunksOf(bytes, size));
      expect(entries.map((entry) => entry.value)).toEqual([
        '198.51.100.1',
        'xn--bcher-kva.example',
        '198.51.100.2',
      ]);
      expect(stats.lines).toBe(4);
    }
  });

  test('split CRLF', async () => {
    async function* chunks(): AsyncIterable<string> {
      yield '198.51.100.1\r';
      yield '\n198.51.100.2\r';
      yield '\n';
    }
    const { entries, stats } = await parseTextList(chunks());
    expect(entries.map((entry) => entry.value)).toEqual(['198.51.100.1', '198.51.100.2']);
    expect(stats.blank).toBe(0);
  });

  test('trailing comments and columns', async () => {
    const text = [
      '1.2.3.0/24 ; SBL123',
      '5.6.7.8 # seen twice',
      '9.9.9.9\t12',
      '10.0.0.1   ',
      '; header comment',
      '  # indented comment',
    ].join('\n');
    const { entries, stats } = await parseTextList(text);
    expect(entries).toEqual([
      { type: 'ipv4-cidr', value: '1.2.3.0/24' },
      { type: 'ipv4', value: '5.6.7.8' },
      { type: 'ipv4', value: '9.9.9.9' },
      { type: 'ipv4', value: '10.0.0.1' },
    ]);
    expect(stats.comments).toBe(2);
  });

  test('URL fragment is not a comment', async () => {
    const { entries } = await parseTextList('http://example.com/a#b\n', { valueType: 'url' });
    expect(entries).toEqual([{ type: 'url', value: 'http://example.com/a' }]);
  });

  test('duplicates after canonicalization', async () => {
    const { entries, stats } = await parseTextList('Example.com\nexample.com.\nEXAMPLE.COM\n', {
      valueType: 'domain',
    });
    expect(entries).toEqual([{ type: 'domain', value: 'example.com' }]);
    expect(stats.duplicates).toBe(2);
  });

  test('invalid examples capped', async () => {
    const text = ['256.1.1.1', '1.2.3', 'x', '198.51.100.1'].join('\n');
    const { stats } = await parseTextList(text, { valueType: 'ipv4', maxInvalidExamples: 2 });
    expect(stats.invalid).toBe(3);
    expect(stats.invalidExamples).toEqual([
      { line: 1, text: '256.1.1.1', reason: expect.stringContaining('"256.1.1.1"') },
      { line: 2, text: '1.2.3', reason: expect.stringContaining('"1.2.3"') },
    ]);
  });

  test('global extract regex', async () => {
    const { stats } = await parseTextList('ip=198.51.100.1\nip=198.51.100.2\n', {
      extract: /ip=(\S+)/g,
    });
    expect(stats.valid).toBe(2);
  });

  test('extract with two groups: a range', async () => {
    const body = readFileSync(
      new URL('../fixtures/handmade/dshield-block-sample.txt', import.meta.url),
    );
    const { entries, stats } = await parseTextList(body, {
      extract: /^([0-9.]+)\t([0-9.]+)\t/,
      valueType: 'ipv4-range',
    });
    expect(entries.map((entry) => entry.value)).toEqual([
      '192.0.2.0/24',
      '198.51.100.0/24',
      '203.0.113.0/24',
    ]);
    expect(stats.valid).toBe(3);
  });

  test('UTF-16 BOM, both byte orders', async () => {
    const text = '# list\r\n198.51.100.1\r\nbücher.example\r\n';
    const little = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const big = Buffer.from(little).swap16();
    for (const body of [little, big]) {
      for (const size of [1, 2, 3, 7, body.length]) {
        const { entries, stats } = await parseTextList(chunksOf(body, size));
        expect(entries).toEqual([
          { type: 'ipv4', value: '198.51.100.1' },
          { type: 'domain', value: 'xn--bcher-kva.example' },
        ]);
        expect(stats.invalid).toBe(0);
      }
    }
  });

  test('extract (a+)+$ on aaaa!', async () => {
    const hostile = `${'a'.repeat(50_000)}!`;
    const started = Date.now();
    const { entries, stats } = await parseTextList(`${hostile}\n${hostile}\naaa\n`, {
      extract: /(a+)+$/,
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stats.unmatched).toBe(2);
    expect(entries).toEqual([]);
  });

  test('case-insensitive extract', async () => {
    const { entries } = await parseTextList('IP=198.51.100.1\n', { extract: /ip=(\S+)/i });
    expect(entries).toEqual([{ type: 'ipv4', value: '198.51.100.1' }]);
  });

  test('64 MiB line without newline', async () => {
    const chunk = Buffer.alloc(65536, 0x61);
    async function* body(): AsyncIterable<Buffer> {
      for (let i = 0; i < 1024; i += 1) yield chunk;
      yield Buffer.from('\n198.51.100.1\n198.51.100.2\n198.51.100.3');
    }
    const started = Date.now();
    const { entries, stats } = await parseTextList(body());
    expect(Date.now() - started).toBeLessThan(5000);
    expect(entries.map((entry) => entry.value)).toEqual([
      '198.51.100.1',
      '198.51.100.2',
      '198.51.100.3',
    ]);
    expect(stats.invalid).toBe(1);
    expect(stats.invalidExamples).toEqual([
      { line: 1, text: '', reason: `line longer than ${MAX_LINE_LENGTH} characters` },
    ]);
  });

  test('overlong last line', async () => {
    const { stats } = await parseTextList(`198.51.100.1\n${'b'.repeat(MAX_LINE_LENGTH + 1)}`);
    expect(stats).toMatchObject({ lines: 2, valid: 1, invalid: 1 });
  });

  test('HTML page', async () => {
    const page = '<!DOCTYPE html>\n<html><body>Sign in</body></html>\n';
    const { entries, stats } = await parseTextList(chunksOf(page, 5));
    expect(stats.looksLikeHtml).toBe(true);
    expect(entries).toEqual([]);
    expect(judgeBody(stats)).toEqual({ ok: false, reason: expect.stringMatching(/HTML/) });
  });

  test('HTML after blank lines', async () => {
    const { stats } = await parseTextList('\n\n  <html lang="en">\n');
    expect(stats.looksLikeHtml).toBe(true);
  });

  test('HTML stops reading', async () => {
    let yielded = 0;
    async function* endless(): AsyncIterable<string> {
      yield '<html>';
      for (;;) {
        yielded += 1;
        yield '198.51.100.1\n';
      }
    }
    const { stats } = await parseTextList(endless());
    expect(stats.looksLikeHtml).toBe(true);
    expect(yielded).toBe(0);
  });

  test('empty body', async () => {
    const { stats } = await parseTextList('');
    expect(stats.lines).toBe(0);
    expect(judgeBody(stats)).toEqual({ ok: false, reason: 'no valid entries in 0 lines' });
  });

  test('mostly invalid lines', async () => {
    const text = ['198.51.100.1', 'garbage one', 'garbage_two', 'garbage!three', '# c', ''].join(
      '\n',
    );
    const { stats } = await parseTextList(text, { valueType: 'ipv4' });
    expect(stats.valid).toBe(1);
    expect(stats.invalid).toBe(3);
    expect(judgeBody(stats)).toEqual({
      ok: false,
      reason: '3 of 4 value lines are invalid (more than half)',
    });
  });
});

describe('judgeBody', () => {
  test('plausible body', () => {
    expect(judgeBody(statsWith({}))).toEqual({ ok: true });
  });

  test('exactly half invalid passes', () => {
    expect(judgeBody(statsWith({ lines: 10, valid: 5, invalid: 5 }))).toEqual({ ok: true });
  });

  test('comments do not count', () => {
    expect(judgeBody(statsWith({ lines: 100, comments: 90, valid: 4, invalid: 6 })).ok).toBe(false);
  });
});
