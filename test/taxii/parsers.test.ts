import {
  decodeCursor,
  encodeCursor,
  parseAccept,
  type CursorScope,
} from '../../src/taxii/index.js';
import {
  formatTimestampMicros,
  parseTimestampMicros,
  toVersionKey,
} from '../../src/taxii/timestamp.js';

describe('TAXII timestamps', () => {
  test('parse keeps microseconds', () => {
    expect(parseTimestampMicros('2024-01-02T03:04:05.123456Z')).toBe(
      Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 123456,
    );
  });

  test('parse truncates past six digits', () => {
    expect(parseTimestampMicros('2024-01-02T03:04:05.1234569Z')).toBe(
      Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 123456,
    );
  });

  test.each([
    '2024-02-30T00:00:00Z',
    '2024-01-02T24:00:00Z',
    '2024-01-02 03:04:05Z',
    '2024-01-02T03:04:05+01:00',
    '',
  ])('parse rejects %p', (text) => {
    expect(parseTimestampMicros(text)).toBeUndefined();
  });

  test('format has six digits', () => {
    expect(formatTimestampMicros(Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 7)).toBe(
      '2024-01-02T03:04:05.000007Z',
    );
  });

  test('version key equals across precisions', () => {
    expect(toVersionKey('2024-01-02T03:04:05Z')).toBe('2024-01-02T03:04:05.000000Z');
    expect(toVersionKey('2024-01-02T03:04:05.1Z')).toBe('2024-01-02T03:04:05.100000Z');
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
