import { describe, expect, it } from '@jest/globals';

import {
  confidenceFromScale,
  mergeConfidence,
  type ConfidenceScale,
} from '../../src/processing/confidence.js';
import {
  agingRules,
  decayAgeMicros,
  decayScore,
  parseAgingSpec,
} from '../../src/processing/policy.js';
import { buildHubVersion, type VersionContext } from '../../src/processing/versions.js';
import { indicatorId, patternFor, tlpMarking } from '../../src/stix/index.js';
import type { ValueType } from '../../src/processing/index.js';
import type { IndicatorChange, SightingRecord } from '../../src/store/index.js';

const COLLECTION = '5d0c8a3e-8f0b-4b7a-9c3e-2f1d0a9b8c7d';
const profile = (id: string, confidence: number, overrides = {}) => ({
  id,
  name: `Feed ${id}`,
  confidence,
  weight: 1,
  tlp: 'clear' as const,
  indicatorTypes: ['malicious-activity'],
  labels: [id],
  ...overrides,
});
const context: VersionContext = {
  collectionId: COLLECTION,
  sources: new Map([
    ['a', profile('a', 40)],
    ['b', profile('b', 80, { tlp: 'amber', indicatorTypes: ['compromised'] })],
  ]),
  fallback: profile('', 50),
  confidenceRule: 'max',
};

function sighting(sourceId: string, overrides: Partial<SightingRecord> = {}): SightingRecord {
  return {
    sourceId,
    indicatorId: 'indicator--x',
    firstSeen: 1_700_000_000_000_000,
    lastSeen: 1_700_000_000_000_000,
    missed: 0,
    creator: sourceId === 'a',
    ...overrides,
  };
}

function change(overrides: Partial<IndicatorChange>): IndicatorChange {
  return {
    kind: 'created',
    valueType: 'ipv4',
    value: '45.155.205.1',
    indicatorId: 'indicator--x',
    at: 1_700_000_000_000_000,
    sightings: [sighting('a')],
    ...overrides,
  };
}

const parse = (json: string) => JSON.parse(json) as Record<string, unknown>;

describe('buildHubVersion', () => {
  it('created version', () => {
    const body = parse(buildHubVersion(change({}), context).json);
    expect(body.created).toBe('2023-11-14T22:13:20.000Z');
    expect(body.modified).toBe(body.created);
    expect(body.confidence).toBe(40);
    expect(body.valid_until).toBeUndefined();
    expect(body.external_references).toEqual([{ source_name: 'Feed a', external_id: 'a' }]);
  });

  it('merged unions sources', () => {
    const version = buildHubVersion(
      change({
        kind: 'merged',
        at: 1_700_000_000_000_000 + 5_000,
        firstVersion: '2023-11-14T22:13:20.000000Z',
        lastVersion: '2023-11-14T22:13:20.000000Z',
        sightings: [sighting('a'), sighting('b')],
      }),
      context,
    );
    const body = parse(version.json);
    expect(body.created).toBe('2023-11-14T22:13:20.000Z');
    expect(body.modified).toBe('2023-11-14T22:13:20.005Z');
    expect(body.confidence).toBe(80);
    expect(body.indicator_types).toEqual(['compromised', 'malicious-activity']);
    expect(body.labels).toEqual(['a', 'b']);
    // The most restrictive TLP of the sources wins.
    expect(body.object_marking_refs).toEqual([tlpMarking('amber').id]);
    expect((body.external_references as unknown[]).length).toBe(2);
  });

  it('withdrawn sets valid_until', () => {
    const body = parse(
      buildHubVersion(
        change({
          kind: 'withdrawn',
          firstVersion: '2023-11-14T22:13:20.000000Z',
          lastVersion: '2023-11-14T22:13:20.000000Z',
          sightings: [sighting('a', { withdrawnAt: 1_700_000_000_000_000 })],
        }),
        context,
      ).json,
    );
    // Same millisecond as the last version: modified moves one millisecond on.
    expect(body.modified).toBe('2023-11-14T22:13:20.001Z');
    expect(body.valid_until).toBe(body.modified);
    expect(body.confidence).toBe(40);
  });

  it('revoked sets revoked and valid_until', () => {
    const body = parse(
      buildHubVersion(
        change({
          kind: 'revoked',
          at: 1_700_000_002_000_000,
          firstVersion: '2023-11-14T22:13:20.000000Z',
          lastVersion: '2023-11-14T22:13:20.000000Z',
          sightings: [sighting('a', { withdrawnAt: 1_700_000_002_000_000 })],
        }),
        context,
      ).json,
    );
    expect(body.revoked).toBe(true);
    expect(body.modified).toBe('2023-11-14T22:13:22.000Z');
    expect(body.valid_until).toBe(body.modified);
    expect(body.id).toBe('indicator--x');
  });

  it('revoked keeps an earlier end', () => {
    const body = parse(
      buildHubVersion(
        change({
          kind: 'revoked',
          at: 1_700_000_009_000_000,
          firstVersion: '2023-11-14T22:13:20.000000Z',
          lastVersion: '2023-11-14T22:13:22.000000Z',
          sightings: [sighting('a', { withdrawnAt: 1_700_000_002_000_000 })],
        }),
        context,
      ).json,
    );
    expect(body.revoked).toBe(true);
    expect(body.modified).toBe('2023-11-14T22:13:29.000Z');
    expect(body.valid_until).toBe('2023-11-14T22:13:22.000Z');
  });

  it('withdrawn is not revoked', () => {
    const body = parse(
      buildHubVersion(
        change({
          kind: 'expired',
          at: 1_700_000_003_000_000,
          firstVersion: '2023-11-14T22:13:20.000000Z',
          lastVersion: '2023-11-14T22:13:20.000000Z',
          sightings: [sighting('a', { withdrawnAt: 1_700_000_003_000_000 })],
        }),
        context,
      ).json,
    );
    expect(body.revoked).toBeUndefined();
    expect(body.valid_until).toBe(body.modified);
  });

  it('creator stays after it leaves', () => {
    const first = parse(buildHubVersion(change({}), context).json);
    const later = parse(
      buildHubVersion(
        change({
          kind: 'merged',
          at: 1_700_000_001_000_000,
          firstVersion: '2023-11-14T22:13:20.000000Z',
          lastVersion: '2023-11-14T22:13:20.000000Z',
          sightings: [sighting('a', { withdrawnAt: 1_700_000_001_000_000 }), sighting('b')],
        }),
        context,
      ).json,
    );
    expect(later.created_by_ref).toBe(first.created_by_ref);
    expect(later.external_references).toEqual([{ source_name: 'Feed b', external_id: 'b' }]);
  });
});

describe('confidence', () => {
  it.each([
    ['none-low-med-high', 'High', 85],
    ['none-low-med-high', 'low', 15],
    ['admiralty', '2', 70],
    ['admiralty', 5, 10],
    ['wep', 'Even Chance', 50],
    ['wep', 'Probably Not', 30],
    ['dni', 'Very Likely', 85],
    ['dni', 'Remote', 5],
    ['zero-ten', 7, 70],
  ] as [ConfidenceScale, string | number, number][])('%s %s', (scale, value, expected) => {
    expect(confidenceFromScale(scale, value)).toBe(expected);
  });

  it('scale value unknown', () => {
    expect(() => confidenceFromScale('admiralty', '6')).toThrow(/expected one of 1, 2, 3, 4, 5/);
    expect(() => confidenceFromScale('zero-ten', 11)).toThrow(/0 to 10/);
  });

  it('max rule', () => {
    expect(
      mergeConfidence('max', [
        { confidence: 90, weight: 0.5 },
        { confidence: 60, weight: 1 },
      ]),
    ).toBe(60);
  });

  it('combined rule', () => {
    expect(
      mergeConfidence('combined', [
        { confidence: 50, weight: 1 },
        { confidence: 50, weight: 1 },
      ]),
    ).toBe(75);
    expect(mergeConfidence('combined', [])).toBe(0);
  });
});

describe('aging', () => {
  it('parse specs', () => {
    expect(parseAgingSpec('never')).toEqual({ basis: 'never' });
    expect(parseAgingSpec('last_seen+2h')).toEqual({
      basis: 'last-seen',
      maxAgeMicros: 7_200_000_000,
    });
    expect(() => parseAgingSpec('seen+2h')).toThrow(/invalid aging/);
  });

  it('rules per type', () => {
    const rules = agingRules('a', {
      default: parseAgingSpec('first_seen+30d'),
      byType: { ipv4: parseAgingSpec('last_seen+1d'), url: { basis: 'never' } },
    });
    expect(rules).toHaveLength(2);
    expect(rules[0]?.basis).toBe('first-seen');
    expect(rules[0]?.valueTypes).not.toContain('ipv4');
    expect(rules[0]?.valueTypes).not.toContain('url');
    expect(rules[1]).toEqual({
      sourceId: 'a',
      basis: 'last-seen',
      maxAgeMicros: 86_400_000_000,
      valueTypes: ['ipv4'],
    });
  });
});

describe('decay aging', () => {
  const spec = parseAgingSpec('decay(lifetime=30d, speed=2, threshold=30)');

  it('parse', () => {
    expect(spec).toEqual({
      basis: 'decay',
      lifetimeMicros: 30 * 86_400_000_000,
      speed: 2,
      threshold: 30,
    });
    expect(() => parseAgingSpec('decay(lifetime=30d, speed=0, threshold=30)')).toThrow(/speed/);
    expect(() => parseAgingSpec('decay(lifetime=30d, speed=1, threshold=300)')).toThrow(
      /threshold/,
    );
    expect(() => parseAgingSpec('decay(30d)')).toThrow(/invalid aging/);
  });

  it('expires when the score crosses the threshold', () => {
    if (spec.basis !== 'decay') throw new Error('expected a decay spec');
    // base 90: t = 30d * (1 - 30/90)^2 = 30d * 4/9
    const age = decayAgeMicros(spec, 90);
    expect(age).toBe(Math.floor(30 * 86_400_000_000 * (2 / 3) ** 2));
    expect(decayScore(spec, 90, age)).toBeCloseTo(30, 6);
    expect(decayScore(spec, 90, age - 1_000_000)).toBeGreaterThan(30);
    expect(decayScore(spec, 90, 0)).toBe(90);
    expect(decayScore(spec, 90, spec.lifetimeMicros)).toBe(0);
    // A source at or below the threshold starts below it.
    expect(decayAgeMicros(spec, 30)).toBe(0);
  });

  it('becomes a last-seen rule', () => {
    const rules = agingRules('a', { default: spec, byType: {} }, 90);
    expect(rules).toEqual([
      { sourceId: 'a', basis: 'last-seen', maxAgeMicros: decayAgeMicros(spec as never, 90) },
    ]);
  });
});

describe('buildHubVersion created template', () => {
  /** Builds a change whose indicator id is the one `buildIndicator` derives, as polls pass it. */
  function realChange(valueType: IndicatorChange['valueType'], value: string): IndicatorChange {
    const id = indicatorId(COLLECTION, patternFor(valueType as ValueType, value));
    return change({
      valueType,
      value,
      indicatorId: id,
      sightings: [sighting('a', { indicatorId: id })],
    });
  }

  it('matches a full build', () => {
    const templated: VersionContext = { ...context };
    const fresh = () => ({ ...context });
    const values: [string, string][] = [
      ['url', 'http://first.example/'],
      ['url', 'http://quote.example/it\'s/"here"\\'],
      ['url', 'http://unicode.example/ä\u2028'],
      ['ipv4', '45.155.205.1'],
      ['ipv4', '45.155.205.2'],
    ];

    for (const [valueType, value] of values) {
      const viaTemplate = buildHubVersion(realChange(valueType, value), templated);
      // A context seen for the first time builds the version field by field.
      const full = buildHubVersion(realChange(valueType, value), fresh());
      expect(viaTemplate).toEqual(full);
    }
  });

  it('keeps the caller ids', () => {
    // A value that came back after a revocation has an id of its own.
    const own: VersionContext = { ...context };
    const first = buildHubVersion(
      change({ value: '45.155.205.3', indicatorId: 'indicator--a3' }),
      own,
    );
    const second = buildHubVersion(
      change({ value: '45.155.205.4', indicatorId: 'indicator--a4' }),
      own,
    );

    expect(first.id).toBe('indicator--a3');
    expect(parse(first.json).id).toBe('indicator--a3');
    expect(second.id).toBe('indicator--a4');
    expect(parse(second.json)).toMatchObject({ id: 'indicator--a4', name: '45.155.205.4' });
  });
});
