/**
 * Builds a medallion memory-backend data file: one API root with one
 * collection of STIX 2.1 objects (indicators with simple and complex
 * patterns, several versions of some, malware, relationships, an identity
 * and SCOs), timestamps of mixed precision, and manifest entries whose
 * `date_added` values include ties, as a server that adds a bundle at once has.
 */

export const MEDALLION_API_ROOT = 'api1';
export const MEDALLION_COLLECTION = '365fed99-08fa-fdcd-a1b3-fb247eb41d01';
export const MEDALLION_TITLE = 'Partner indicators';
/** Index of the first of the objects that share one `date_added`. */
export const TIED_FROM = 140;

export interface GeneratedData {
  /** The data file for medallion's MemoryBackend. */
  data: object;
  /** Every object version, in the order of `date_added`. */
  objects: Record<string, unknown>[];
  /** Per value type, the values of the newest non-revoked indicator versions with simple patterns. */
  edl: { ip: Set<string>; domain: Set<string>; url: Set<string> };
}

function uuid(prefix: number, n: number): string {
  return `${prefix.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** A timestamp `seconds` after 2024-05-01T00:00:00Z written with `digits` fraction digits (0, 1, 3 or 6). */
function stamp(seconds: number, digits: 0 | 1 | 3 | 6): string {
  const base = new Date(Date.UTC(2024, 4, 1) + seconds * 1000).toISOString().slice(0, 19);
  const fraction = ['', '.5', '.123', '.123456'][[0, 1, 3, 6].indexOf(digits)]!;
  return `${base}${fraction}Z`;
}

/** `date_added` values: microseconds after 2025-01-01, one per step. */
function dateAdded(step: number): string {
  const micros = Date.UTC(2025, 0, 1) * 1000 + step * 1000;
  const millis = Math.floor(micros / 1000);
  return `${new Date(millis).toISOString().slice(0, 23)}${String(micros % 1000).padStart(3, '0')}Z`;
}

export function generateMedallionData(baseUrl: string, indicatorCount = 240): GeneratedData {
  const objects: Record<string, unknown>[] = [];
  const edl = { ip: new Set<string>(), domain: new Set<string>(), url: new Set<string>() };
  const identityId = `identity--${uuid(1, 1)}`;

  objects.push({
    type: 'identity',
    spec_version: '2.1',
    id: identityId,
    created: '2024-04-30T12:00:00.000Z',
    modified: '2024-04-30T12:00:00.000Z',
    name: 'Partner CERT',
    identity_class: 'organization',
  });

  for (let n = 1; n <= indicatorCount; n += 1) {
    const kind = n % 5;
    let pattern: string;
    let value: { type: 'ip' | 'domain' | 'url'; value: string } | undefined;
    if (kind === 0) {
      const ip = `45.${Math.floor(n / 200) + 10}.${n % 200}.${((n * 7) % 250) + 1}`;
      pattern = `[ipv4-addr:value = '${ip}']`;
      value = { type: 'ip', value: ip };
    } else if (kind === 1) {
      const domain = `c2-${n}.interop-test.net`;
      pattern = `[domain-name:value = '${domain}']`;
      value = { type: 'domain', value: domain };
    } else if (kind === 2) {
      const url = `http://dl-${n}.interop-test.org/payload/${n}.bin`;
      pattern = `[url:value = '${url}']`;
      value = { type: 'url', value: url };
    } else if (kind === 3) {
      pattern = `[file:hashes.'SHA-256' = '${n.toString(16).padStart(64, 'a')}']`;
    } else {
      // Not a simple pattern: stored as it is, but no EDL entry.
      pattern = `[ipv4-addr:value = '46.1.${n % 250}.1'] AND [domain-name:value = 'x${n}.interop-test.net']`;
    }
    const versions = n % 7 === 0 ? 3 : n % 4 === 0 ? 2 : 1;
    // Only single-version indicators are revoked: a value whose earlier version
    // arrives in an earlier poll stays listed (the read is incremental).
    const revoked = n % 53 === 0 && versions === 1;
    const digits = ([0, 1, 3, 6] as const)[n % 4]!;
    for (let v = 0; v < versions; v += 1) {
      const last = v === versions - 1;
      const indicator: Record<string, unknown> = {
        type: 'indicator',
        spec_version: '2.1',
        id: `indicator--${uuid(2, n)}`,
        created_by_ref: identityId,
        created: stamp(n, digits),
        modified: stamp(n + v * 3600, digits),
        name: `Indicator ${n}`,
        indicator_types: ['malicious-activity'],
        pattern,
        pattern_type: 'stix',
        pattern_version: '2.1',
        valid_from: stamp(n, 0),
        confidence: 40 + v * 10,
      };
      if (revoked && last) indicator.revoked = true;
      objects.push(indicator);
    }
    if (value && !revoked) edl[value.type].add(value.value);
  }

  for (let n = 1; n <= 20; n += 1) {
    objects.push({
      type: 'malware',
      spec_version: '2.1',
      id: `malware--${uuid(3, n)}`,
      created: stamp(n, 3),
      modified: stamp(n, 3),
      name: `Family ${n}`,
      is_family: true,
    });
    objects.push({
      type: 'relationship',
      spec_version: '2.1',
      id: `relationship--${uuid(4, n)}`,
      created: stamp(n, 6),
      modified: stamp(n, 6),
      relationship_type: 'indicates',
      source_ref: `indicator--${uuid(2, n)}`,
      target_ref: `malware--${uuid(3, n)}`,
    });
  }
  for (let n = 1; n <= 5; n += 1) {
    objects.push({
      type: 'ipv4-addr',
      spec_version: '2.1',
      id: `ipv4-addr--${uuid(5, n)}`,
      value: `47.0.0.${n}`,
    });
  }

  // Every object gets its own date_added except a run of 30 that share one,
  // as objects posted in one request do. The run spans index 150, where a
  // poll of 3 pages of 50 stops.
  const manifest = objects.map((object, index) => {
    const step = index >= TIED_FROM && index < TIED_FROM + 30 ? TIED_FROM : index;
    const version = (object.modified ?? object.created) as string | undefined;
    const added = dateAdded(step);
    if (version === undefined) object._date_added = added;
    return {
      id: object.id,
      date_added: added,
      version: version ?? added,
      media_type: 'application/stix+json;version=2.1',
    };
  });

  const apiRootUrl = `${baseUrl}/${MEDALLION_API_ROOT}/`;
  const data = {
    '/discovery': {
      title: 'medallion interop peer',
      description: 'A medallion server started by the feedhub interop tests.',
      contact: 'nobody@interop-test.invalid',
      default: apiRootUrl,
      api_roots: [apiRootUrl],
    },
    [MEDALLION_API_ROOT]: {
      information: {
        title: 'Interop API root',
        description: 'One collection of generated STIX 2.1 objects.',
        versions: ['application/taxii+json;version=2.1'],
        max_content_length: 10_485_760,
      },
      status: [],
      collections: [
        {
          id: MEDALLION_COLLECTION,
          title: MEDALLION_TITLE,
          description: 'Generated indicators, malware and relationships.',
          can_read: true,
          can_write: true,
          media_types: ['application/stix+json;version=2.1'],
          objects: objects.map((o) => ({ ...o })),
          manifest,
        },
      ],
    },
  };
  for (const object of objects) delete object._date_added;
  return { data, objects, edl };
}
