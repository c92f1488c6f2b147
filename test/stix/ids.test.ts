import {
  STIX_SCO_NAMESPACE,
  identityId,
  indicatorId,
  observableId,
  uuidV5,
} from '../../src/stix/index.js';

const DNS_NAMESPACE = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const COLLECTION = '91a7b528-80eb-42ed-a74d-c6fbd5a26116';

describe('uuidV5', () => {
  // RFC 9562 appendix A.4.
  test('RFC 9562 example', () => {
    expect(uuidV5(DNS_NAMESPACE, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  // Python 3 uuid.uuid5(uuid.NAMESPACE_DNS, 'python.org'), from its documentation.
  test('Python documentation example', () => {
    expect(uuidV5(DNS_NAMESPACE, 'python.org')).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
  });

  // Computed with Python 3 uuid.uuid5 in the STIX SCO namespace.
  test('STIX SCO namespace', () => {
    expect(uuidV5(STIX_SCO_NAMESPACE, '{"value":"198.51.100.3"}')).toBe(
      '28bb3599-77cd-5a82-a950-b5bc3caf07c4',
    );
  });

  test('upper-case namespace', () => {
    expect(uuidV5(DNS_NAMESPACE.toUpperCase(), 'python.org')).toBe(
      uuidV5(DNS_NAMESPACE, 'python.org'),
    );
  });

  test('rejects bad namespace', () => {
    expect(() => uuidV5('not-a-uuid', 'x')).toThrow(/not-a-uuid/);
  });
});

describe('hub ids', () => {
  test('observable id', () => {
    expect(observableId('ipv4-addr', '{"value":"198.51.100.3"}')).toBe(
      'ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4',
    );
  });

  test('indicator id is stable', () => {
    const pattern = "[ipv4-addr:value = '198.51.100.7']";
    expect(indicatorId(COLLECTION, pattern)).toBe(indicatorId(COLLECTION, pattern));
    expect(indicatorId(COLLECTION, pattern)).toMatch(/^indicator--[0-9a-f-]{14}5[0-9a-f-]{21}$/);
  });

  test('indicator id differs per collection', () => {
    const pattern = "[ipv4-addr:value = '198.51.100.7']";
    expect(indicatorId(COLLECTION, pattern)).not.toBe(indicatorId('other', pattern));
  });

  test('indicator id differs per pattern', () => {
    expect(indicatorId(COLLECTION, "[ipv4-addr:value = '198.51.100.7']")).not.toBe(
      indicatorId(COLLECTION, "[ipv4-addr:value = '198.51.100.8']"),
    );
  });

  test('identity id differs from indicator id', () => {
    expect(identityId(COLLECTION, 'feodo')).toMatch(/^identity--/);
    expect(identityId(COLLECTION, 'feodo').slice(10)).not.toBe(
      indicatorId(COLLECTION, 'feodo').slice(11),
    );
  });
});
