import {
  decodeCursor,
  encodeCursor,
  parseAccept,
  type CursorScope,
} from '../../src/taxii/index.js';
import { TaxiiError } from '../../src/taxii/errors.js';
import { normaliseFilters, parseObjectFilters } from '../../src/taxii/filters.js';
import { isTaxiiContentType } from '../../src/taxii/media-type.js';

const ALL = { id: true, type: true, version: true, specVersion: true };

describe('TAXII filter timestamps', () => {
  test('added_after keeps microseconds', () => {
    const filters = parseObjectFilters({ added_after: '2024-01-02T03:04:05.123456Z' }, ALL);

    expect(filters.addedAfter).toBe(Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 123456);
  });

  test('added_after without fraction', () => {
    const filters = parseObjectFilters({ added_after: '2024-01-02T03:04:05Z' }, ALL);

    expect(filters.addedAfter).toBe(Date.UTC(2024, 0, 2, 3, 4, 5) * 1000);
  });

  test.each([
    '2024-02-30T00:00:00Z',
    '2024-01-02T24:00:00Z',
    '2024-01-02 03:04:05Z',
    '2024-01-02T03:04:05+01:00',
    '',
  ])('added_after rejects %p', (text) => {
    expect(() => parseObjectFilters({ added_after: text }, ALL)).toThrow(TaxiiError);
  });

  test('version keys equal across precisions', () => {
    const filters = parseObjectFilters(
      { 'match[version]': '2024-01-02T03:04:05Z,2024-01-02T03:04:05.000Z,2024-01-02T03:04:05.1Z' },
      ALL,
    );

    expect(filters.versions).toEqual([
      { kind: 'at', version: '2024-01-02T03:04:05.000000Z' },
      { kind: 'at', version: '2024-01-02T03:04:05.100000Z' },
    ]);
  });

  test('latest spec version unless asked', () => {
    expect(parseObjectFilters({}, ALL).latestSpecVersion).toBe(true);
    expect(parseObjectFilters({ 'match[spec_version]': '2.0' }, ALL).latestSpecVersion).toBe(false);
  });

  test('normalised filters ignore order', () => {
    const a = parseObjectFilters({ 'match[type]': 'malware,indicator' }, ALL);
    const b = parseObjectFilters({ 'match[type]': ['indicator', 'malware'] }, ALL);

    expect(normaliseFilters(a)).toBe(normaliseFilters(b));
  });
});

describe('Content-Type parser', () => {
  test.each([
    ['application/taxii+json;version=2.1', true],
    ['application/taxii+json', true],
    ['Application/TAXII+JSON ; version="2.1"; charset=utf-8', true],
    ['application/taxii+json;version=2.0', false],
    ['application/stix+json;version=2.1', false],
    ['application/json', false],
    ['application/taxii+json;version', false],
    ['*/*', false],
  ])('%s', (header, expected) => {
    expect(isTaxiiContentType(header)).toBe(expected);
  });
});

describe('Accept parser', () => {
  test('parses params and weights', () => {
    const [range] = parseAccept(' Application/TAXII+json ; Version = "2.1" ;q=0.5');

    expect(range).toEqual({
      type: 'application',
      subtype: 'taxii+json',
      params: new Map([['version', '2.1']]),
      q: 0.5,
    });
  });

  test('skips invalid members', () => {
    expect(
      parseAccept('text, application/json;q=2, */*;q=0.1').map(
        (range) => `${range.type}/${range.subtype}`,
      ),
    ).toEqual(['*/*']);
  });
});

describe('next cursor', () => {
  const scope: CursorScope = {
    resource: 'objects',
    collectionId: 'c1',
    filters: '[]',
    principal: '',
  };
  const position = {
    dateAdded: 1_700_000_000_000_000,
    id: 'indicator--x',
    version: '2024-01-01T00:00:00.000000Z',
  };

  test('round trip', () => {
    expect(decodeCursor('secret', encodeCursor('secret', position, scope), scope)).toEqual(
      position,
    );
  });

  test('other secret is rejected', () => {
    expect(() => decodeCursor('other', encodeCursor('secret', position, scope), scope)).toThrow(
      'next',
    );
  });

  test('other principal is rejected', () => {
    const cursor = encodeCursor('secret', position, scope);

    expect(() => decodeCursor('secret', cursor, { ...scope, principal: 'alice' })).toThrow(
      'another collection',
    );
  });
});
