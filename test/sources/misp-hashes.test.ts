import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import {
  attributeHashes,
  digestOfHashes,
  HashesFileError,
  parseHashesCsv,
} from '../../src/sources/misp-hashes.js';

const FIXTURES = new URL('../fixtures/misp/', import.meta.url);
const EVENT_A = '11111111-1111-4111-8111-111111111111';
const EVENT_B = '22222222-2222-4222-8222-222222222222';

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

function parse(text: string): ReturnType<typeof parseHashesCsv> {
  return parseHashesCsv(Buffer.from(text, 'utf8'));
}

function sorted(set: ReadonlySet<string> | undefined): string[] {
  return [...(set ?? [])].sort();
}

describe('parseHashesCsv', () => {
  test('crowdsec fixture, reversed columns', () => {
    const file = parseHashesCsv(readFileSync(new URL('crowdsec/hashes.csv', FIXTURES)));

    expect(file.order).toBe('event_uuid,md5');
    expect(file.lines).toBe(864);
    expect(file.invalidLines).toBe(0);
    expect(file.byEvent.size).toBe(3);
    expect(file.byEvent.get('d177856e-6e46-44ee-8eb5-83ef1c7452c7')?.size).toBe(508);
    expect(file.byEvent.get('6a10e5d8-f1cd-42b0-8240-a4650efd83d6')?.size).toBe(155);
    expect(file.byEvent.get('8f09de10-6867-45c6-814d-3d91a33d3af7')?.size).toBe(201);
  });

  test('standard column order', () => {
    const file = parse(`${md5('192.0.2.1')},${EVENT_A}\n${md5('192.0.2.2')},${EVENT_B}\n`);

    expect(file.order).toBe('md5,event_uuid');
    expect(sorted(file.byEvent.get(EVENT_A))).toEqual([md5('192.0.2.1')]);
    expect(sorted(file.byEvent.get(EVENT_B))).toEqual([md5('192.0.2.2')]);
  });

  test('both orders give the same sets', () => {
    const standard = parse(`${md5('a')},${EVENT_A}\n${md5('b')},${EVENT_A}\n`);
    const reversed = parse(`${EVENT_A},${md5('b')}\n${EVENT_A},${md5('a')}\n`);

    expect(sorted(reversed.byEvent.get(EVENT_A))).toEqual(sorted(standard.byEvent.get(EVENT_A)));
  });

  test('header, CRLF, BOM, blanks and quotes', () => {
    const text =
      '\uFEFFmd5,event_uuid\r\n\r\n' +
      `${md5('a').toUpperCase()},${EVENT_A.toUpperCase()}\r\n` +
      `  "${md5('b')}" , "${EVENT_A}"  \r\n` +
      '\r\n' +
      `${md5('c')},${EVENT_B}`;

    const file = parse(text);

    expect(file.order).toBe('md5,event_uuid');
    expect(file.lines).toBe(3);
    expect(file.invalidLines).toBe(0);
    expect(sorted(file.byEvent.get(EVENT_A))).toEqual([md5('a'), md5('b')].sort());
    expect(sorted(file.byEvent.get(EVENT_B))).toEqual([md5('c')]);
  });

  test('header naming the reversed order', () => {
    const file = parse(`event_uuid,md5(value)\n${EVENT_A},${md5('a')}\n`);

    expect(file.order).toBe('event_uuid,md5');
    expect(file.lines).toBe(1);
    expect(file.invalidLines).toBe(0);
  });

  test('malformed lines counted and skipped', () => {
    const text = [
      `${md5('a')},${EVENT_A}`,
      `${md5('b')},${EVENT_A}`,
      `${md5('c')},${EVENT_A}`,
      'not a line',
      `${md5('d')},${EVENT_A},extra`,
      `${EVENT_B},${md5('e')}`,
    ].join('\n');

    const file = parse(text);

    expect(file.lines).toBe(3);
    expect(file.invalidLines).toBe(3);
    expect(file.invalidExamples.map((example) => example.line)).toEqual([4, 5, 6]);
    expect(file.invalidExamples[0]?.reason).toMatch(/expected an MD5 and an event UUID/);
    expect(file.invalidExamples[2]?.reason).toMatch(
      /order event_uuid,md5, but the first data line has md5,event_uuid/,
    );
    expect(file.byEvent.get(EVENT_B)).toBeUndefined();
  });

  test('mostly invalid file rejected', () => {
    const text = `${md5('a')},${EVENT_A}\nfoo,bar\nbaz\n1,2,3\n`;

    expect(() => parse(text)).toThrow(HashesFileError);
    expect(() => parse(text)).toThrow(/3 of 4 lines are not an MD5 and an event UUID/);
  });

  test('HTML page rejected', () => {
    expect(() => parse('<!DOCTYPE html><html>Not found</html>')).toThrow(/HTML page/);
  });

  test('header alone lists nothing', () => {
    const file = parse('md5,event_uuid\r\n');

    expect(file.lines).toBe(0);
    expect(file.invalidLines).toBe(0);
    expect(file.byEvent.size).toBe(0);
  });
});

describe('digestOfHashes', () => {
  test('independent of order', () => {
    expect(digestOfHashes([md5('a'), md5('b')])).toBe(digestOfHashes([md5('b'), md5('a')]));
  });

  test('differs for another set', () => {
    expect(digestOfHashes([md5('a')])).not.toBe(digestOfHashes([md5('a'), md5('b')]));
  });

  test('22 base64url characters', () => {
    expect(digestOfHashes([md5('a')])).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe('attributeHashes', () => {
  test('plain value', () => {
    expect(attributeHashes('ip-dst', '192.0.2.1')).toEqual([md5('192.0.2.1')]);
  });

  test('composite value and its parts', () => {
    expect(attributeHashes('domain|ip', 'evil.example|192.0.2.1')).toEqual([
      md5('evil.example|192.0.2.1'),
      md5('evil.example'),
      md5('192.0.2.1'),
    ]);
  });
});
