import { readFileSync } from 'node:fs';

import {
  IDENTITY_TIMESTAMP,
  allTlpMarkings,
  buildIdentity,
  buildIndicator,
  identityId,
  indicatorId,
  patternFor,
  tlpMarking,
  tlpMarkingById,
  toStoredVersion,
  validateStixObject,
  type IndicatorInput,
} from '../../src/stix/index.js';

const COLLECTION = '91a7b528-80eb-42ed-a74d-c6fbd5a26116';
const CREATED = Date.UTC(2024, 0, 2, 3, 4, 5) * 1000 + 123456;

function readFixtureObject(name: string): Record<string, unknown> {
  const bundle = JSON.parse(
    readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'),
  ) as {
    objects: Record<string, unknown>[];
  };
  const [object] = bundle.objects;
  if (!object) throw new Error(`fixture ${name} has no object`);
  return object;
}

function indicatorInput(overrides: Partial<IndicatorInput> = {}): IndicatorInput {
  return {
    collectionId: COLLECTION,
    identityId: identityId(COLLECTION, 'feodo'),
    type: 'ipv4',
    value: '198.51.100.7',
    confidence: 80,
    tlpMarkingId: tlpMarking('green').id,
    indicatorTypes: ['malicious-activity'],
    createdMicros: CREATED,
    validFromMicros: CREATED,
    ...overrides,
  };
}

describe('tlpMarking', () => {
  const oasis: [string, 'amber+strict' | 'green' | 'red'][] = [
    ['marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003.json', 'amber+strict'],
    ['marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb.json', 'green'],
    ['marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1.json', 'red'],
  ];

  test.each(oasis)('matches OASIS %s', (file, level) => {
    const marking = tlpMarking(level);
    const published = readFixtureObject(file);
    expect(marking.json).toBe(JSON.stringify(published));
    expect(marking.id).toBe(published.id);
  });

  test('TLP 1.0 white per STIX 2.1', () => {
    expect(JSON.parse(tlpMarking('white').json)).toEqual({
      type: 'marking-definition',
      spec_version: '2.1',
      id: 'marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9',
      created: '2017-01-20T00:00:00.000Z',
      definition_type: 'tlp',
      name: 'TLP:WHITE',
      definition: { tlp: 'white' },
    });
  });

  test('TLP 1.0 ids', () => {
    expect(tlpMarking('green', '1.0').id).toBe(
      'marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da',
    );
    expect(tlpMarking('amber', '1.0').id).toBe(
      'marking-definition--f88d31f6-486f-44da-b317-01333bde0b82',
    );
    expect(tlpMarking('red', '1.0').id).toBe(
      'marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed',
    );
  });

  test('TLP 2.0 clear and amber ids', () => {
    expect(tlpMarking('clear').id).toBe('marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487');
    expect(tlpMarking('amber').id).toBe('marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421');
  });

  test('white and clear map across versions', () => {
    expect(tlpMarking('white', '2.0').id).toBe(tlpMarking('clear').id);
    expect(tlpMarking('clear', '1.0').id).toBe(tlpMarking('white').id);
  });

  test('amber+strict has no TLP 1.0', () => {
    expect(() => tlpMarking('amber+strict', '1.0')).toThrow(/only in TLP 2.0/);
  });

  test('lookup by id', () => {
    expect(tlpMarkingById(tlpMarking('red', '1.0').id)?.level).toBe('red');
    expect(
      tlpMarkingById('marking-definition--00000000-0000-4000-8000-000000000000'),
    ).toBeUndefined();
  });

  test('all markings validate', () => {
    for (const marking of allTlpMarkings()) {
      expect(validateStixObject(marking.json)).toEqual({ ok: true });
      expect(toStoredVersion(marking.json).version).toMatch(/^20(17|22)-/);
    }
  });
});

describe('buildIndicator', () => {
  test('exact JSON', () => {
    const input = indicatorInput({ labels: ['botnet'] });
    const built = buildIndicator(input);
    const pattern = "[ipv4-addr:value = '198.51.100.7']";
    expect(built.json).toBe(
      JSON.stringify({
        type: 'indicator',
        spec_version: '2.1',
        id: indicatorId(COLLECTION, pattern),
        created_by_ref: input.identityId,
        created: '2024-01-02T03:04:05.123Z',
        modified: '2024-01-02T03:04:05.123Z',
        name: '198.51.100.7',
        indicator_types: ['malicious-activity'],
        pattern,
        pattern_type: 'stix',
        pattern_version: '2.1',
        valid_from: '2024-01-02T03:04:05.123Z',
        confidence: 80,
        labels: ['botnet'],
        object_marking_refs: ['marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb'],
      }),
    );
    expect(built.id).toBe(indicatorId(COLLECTION, pattern));
    expect(built.type).toBe('indicator');
    expect(built.specVersion).toBe('2.1');
    expect(built.version).toBe('2024-01-02T03:04:05.123000Z');
  });

  test('same input same text', () => {
    expect(buildIndicator(indicatorInput()).json).toBe(buildIndicator(indicatorInput()).json);
  });

  test('empty lists omitted', () => {
    const object = JSON.parse(
      buildIndicator(indicatorInput({ indicatorTypes: [], labels: [] })).json,
    );
    expect(object).not.toHaveProperty('labels');
    expect(object).not.toHaveProperty('indicator_types');
  });

  test('optional fields', () => {
    const object = JSON.parse(
      buildIndicator(
        indicatorInput({
          name: 'C2 server',
          description: 'Seen by Feodo Tracker',
          modifiedMicros: CREATED + 1000,
          validUntilMicros: CREATED + 2000,
          revoked: true,
        }),
      ).json,
    );
    expect(object.name).toBe('C2 server');
    expect(object.description).toBe('Seen by Feodo Tracker');
    expect(object.modified).toBe('2024-01-02T03:04:05.124Z');
    expect(object.valid_until).toBe('2024-01-02T03:04:05.125Z');
    expect(object.revoked).toBe(true);
  });

  test('rejects bad confidence', () => {
    expect(() => buildIndicator(indicatorInput({ confidence: 101 }))).toThrow(/confidence 101/);
    expect(() => buildIndicator(indicatorInput({ confidence: 0.5 }))).toThrow(/confidence/);
  });

  test('rejects valid_until before valid_from', () => {
    expect(() => buildIndicator(indicatorInput({ validUntilMicros: CREATED }))).toThrow(
      /valid_until/,
    );
  });

  test('rejects modified before created', () => {
    expect(() => buildIndicator(indicatorInput({ modifiedMicros: CREATED - 1000 }))).toThrow(
      /modified/,
    );
  });

  const values: [IndicatorInput['type'], string][] = [
    ['ipv4', '198.51.100.7'],
    ['ipv4-cidr', '198.51.100.0/24'],
    ['ipv4-range', '10.0.0.1-10.0.0.9'],
    ['ipv6', '2001:db8::1'],
    ['ipv6-cidr', '2001:db8::/32'],
    ['domain', 'example.com'],
    ['url', "http://example.com/it's"],
    ['md5', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['sha1', 'da39a3ee5e6b4b0d3255bfef95601890afd80709'],
    ['sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ];

  test.each(values)('%s validates', (type, value) => {
    const built = buildIndicator(indicatorInput({ type, value, labels: ['x'] }));
    expect(validateStixObject(built.json)).toEqual({ ok: true });
    expect(JSON.parse(built.json).pattern).toBe(patternFor(type, value));
  });
});

describe('buildIdentity', () => {
  test('deterministic body', () => {
    const input = { collectionId: COLLECTION, sourceId: 'feodo', name: 'abuse.ch Feodo Tracker' };
    const first = buildIdentity(input);
    expect(buildIdentity({ ...input })).toEqual(first);
    expect(JSON.parse(first.json)).toEqual({
      type: 'identity',
      spec_version: '2.1',
      id: identityId(COLLECTION, 'feodo'),
      created: IDENTITY_TIMESTAMP,
      modified: IDENTITY_TIMESTAMP,
      name: 'abuse.ch Feodo Tracker',
      identity_class: 'organization',
    });
  });

  test('system class validates', () => {
    const built = buildIdentity({
      collectionId: COLLECTION,
      sourceId: 's',
      name: 'n',
      identityClass: 'system',
    });
    expect(JSON.parse(built.json).identity_class).toBe('system');
    expect(validateStixObject(built.json)).toEqual({ ok: true });
  });
});

describe('toStoredVersion', () => {
  test('OASIS example kept as given', () => {
    const text = JSON.stringify(readFixtureObject('indicator-for-malicious-url.json'), null, 2);
    const stored = toStoredVersion(text);
    expect(stored).toEqual({
      id: 'indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f',
      type: 'indicator',
      version: '2014-06-29T13:49:37.079000Z',
      specVersion: '2.1',
      json: text,
    });
  });

  test('created when no modified', () => {
    const json =
      '{"type":"marking-definition","id":"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9","created":"2017-01-20T00:00:00Z"}';
    expect(toStoredVersion(json).version).toBe('2017-01-20T00:00:00.000000Z');
    expect(toStoredVersion(json).specVersion).toBe('2.1');
  });

  test('SCO without timestamps', () => {
    const json =
      '{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4","value":"198.51.100.3"}';
    expect(toStoredVersion(json).version).toBe('');
  });

  test('keeps spec_version', () => {
    const json =
      '{"type":"indicator","spec_version":"2.0","id":"indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f"}';
    expect(toStoredVersion(json).specVersion).toBe('2.0');
  });

  const bad: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['[]', /JSON object/],
    ['{"type":"indicator"}', /must be strings/],
    [
      '{"type":"indicator","id":"malware--d81f86b9-975b-4c0b-875e-810c5ad45a4f"}',
      /expected indicator--/,
    ],
    ['{"type":"indicator","id":"indicator--D81F86B9-975B-4C0B-875E-810C5AD45A4F"}', /lower case/],
    [
      '{"type":"indicator","id":"indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f","modified":"yesterday"}',
      /"modified".*"yesterday"/,
    ],
    [
      '{"type":"indicator","id":"indicator--d81f86b9-975b-4c0b-875e-810c5ad45a4f","created":5}',
      /"created" must be a timestamp/,
    ],
  ];

  test.each(bad)('rejects %s', (json, message) => {
    expect(() => toStoredVersion(json)).toThrow(message);
  });
});

describe('validateStixObject', () => {
  test('reports schema errors', () => {
    const object = JSON.parse(buildIndicator(indicatorInput()).json);
    object.confidence = 200;
    delete object.pattern;
    const result = validateStixObject(object);
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.errors.join('\n')).toMatch(/pattern/);
    expect(result.ok ? [] : result.errors.join('\n')).toMatch(/confidence/);
  });

  test('unknown type', () => {
    expect(validateStixObject({ type: 'malware' })).toEqual({
      ok: false,
      errors: ['no schema for STIX type "malware"'],
    });
  });
});
