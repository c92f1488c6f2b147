import { formatTimestamp, parseTimestamp, versionKey } from '../../src/stix/index.js';

const MICROS = Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 123456;

describe('formatTimestamp', () => {
  test('milliseconds by default', () => {
    expect(formatTimestamp(MICROS)).toBe('2024-01-02T03:04:05.123Z');
  });

  test('six digits', () => {
    expect(formatTimestamp(MICROS, 6)).toBe('2024-01-02T03:04:05.123456Z');
  });

  test('no fraction', () => {
    expect(formatTimestamp(MICROS, 0)).toBe('2024-01-02T03:04:05Z');
  });

  test('epoch', () => {
    expect(formatTimestamp(0, 6)).toBe('1970-01-01T00:00:00.000000Z');
  });

  test('before the epoch', () => {
    expect(formatTimestamp(-1, 6)).toBe('1969-12-31T23:59:59.999999Z');
  });

  test('rejects fractional micros', () => {
    expect(() => formatTimestamp(1.5)).toThrow(/integer microseconds/);
  });

  test('rejects seven digits', () => {
    expect(() => formatTimestamp(0, 7)).toThrow(/0-6/);
  });
});

describe('parseTimestamp', () => {
  const good: [string, number][] = [
    ['2024-01-02T03:04:05Z', Date.UTC(2024, 0, 2, 3, 4, 5) * 1000],
    ['2024-01-02T03:04:05.1Z', Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 100000],
    ['2024-01-02T03:04:05.123456Z', MICROS],
    ['2024-01-02T03:04:05.123456789Z', MICROS],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29) * 1000],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29) * 1000],
    ['1969-12-31T23:59:59.999999Z', -1],
  ];

  test.each(good)('%s', (text, micros) => {
    expect(parseTimestamp(text)).toBe(micros);
  });

  test('round trip before 1970', () => {
    expect(formatTimestamp(parseTimestamp('1969-07-20T20:17:40Z'), 0)).toBe('1969-07-20T20:17:40Z');
  });

  test('rejects years beyond micros range', () => {
    expect(() => parseTimestamp('0001-01-01T00:00:00Z')).toThrow(/1685-2255/);
  });

  const bad = [
    '2024-01-02T03:04:05',
    '2024-01-02T03:04:05+00:00',
    '2024-01-02t03:04:05z',
    '2024-01-02 03:04:05Z',
    '2024-01-02T03:04:05.Z',
    '2024-01-02T03:04:05.1234567890Z',
    '2024-01-02T03:04Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-04-31T00:00:00Z',
    '2024-01-01T24:00:00Z',
    '2016-12-31T23:59:60Z',
  ];

  test.each(bad)('rejects %s', (text) => {
    expect(() => parseTimestamp(text)).toThrow(`"${text}"`);
  });
});

describe('versionKey', () => {
  test('pads to six digits', () => {
    expect(versionKey('2024-01-02T03:04:05.1Z')).toBe('2024-01-02T03:04:05.100000Z');
  });

  test('adds missing fraction', () => {
    expect(versionKey('2024-01-02T03:04:05Z')).toBe('2024-01-02T03:04:05.000000Z');
  });

  test('truncates nanoseconds', () => {
    expect(versionKey('2024-01-02T03:04:05.123456789Z')).toBe('2024-01-02T03:04:05.123456Z');
  });

  test('accepts year 1', () => {
    expect(versionKey('0001-01-01T00:00:00.5Z')).toBe('0001-01-01T00:00:00.500000Z');
  });

  test('rejects invalid date', () => {
    expect(() => versionKey('2023-02-29T00:00:00Z')).toThrow(/calendar date/);
  });

  test('text order is time order', () => {
    const keys = ['2024-01-02T03:04:05.9Z', '2024-01-02T03:04:05.10Z', '2024-01-02T03:04:06Z'].map(
      versionKey,
    );
    expect([...keys].sort()).toEqual([keys[1], keys[0], keys[2]]);
  });
});
