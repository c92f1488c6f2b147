/**
 * Maps TAXII 2.1 query parameters (`added_after`, `limit`, `next` and the
 * `match[...]` filters) onto the typed query of the storage port.
 *
 * Unknown parameters are ignored, as the TAXII 2.1 specification allows. A
 * known parameter with an invalid value is rejected with a 400 that names it.
 */
import type { ObjectQuery, VersionSelector } from '../store/index.js';
import { parseTimestamp, versionKey } from '../stix/index.js';

import { invalidParameter } from './errors.js';

/** A parsed query string: Koa's `ctx.query`. */
export type QueryParameters = Record<string, string | string[] | undefined>;

/** The filters of one request, without paging. */
export interface ObjectFilters {
  addedAfter?: number;
  ids?: string[];
  types?: string[];
  specVersions?: string[];
  /** True when the request has no `match[spec_version]`: only the newest spec version of each object is returned. */
  latestSpecVersion: boolean;
  versions: VersionSelector[];
}

/** The `match[...]` filters that an endpoint reads. It ignores the others. */
export interface FilterSupport {
  id: boolean;
  type: boolean;
  version: boolean;
  specVersion: boolean;
}

export interface PageRequest {
  limit: number;
  /** The raw `next` value, still to be verified by the cursor module. */
  next?: string;
}

// STIX 2.1 identifier: `<type>--<UUID>`, the type 3 to 250 characters of a-z, 0-9 and hyphen.
const STIX_ID =
  /^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const STIX_TYPE = /^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$/;
const SPEC_VERSION = /^\d+\.\d+$/;
const POSITIVE_INTEGER = /^[1-9]\d*$/;

/** Returns the single value of a parameter; a repeated one is rejected because it is ambiguous. */
function singleValue(query: QueryParameters, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) {
    throw invalidParameter(name, `${name} was given ${value.length} times; give it once.`);
  }
  return value;
}

/** Splits the comma-separated values of a parameter; repeated parameters combine. */
function listValues(query: QueryParameters, name: string): string[] | undefined {
  const raw = query[name];
  if (raw === undefined) {
    return undefined;
  }
  const values: string[] = [];
  for (const item of Array.isArray(raw) ? raw : [raw]) {
    for (const value of item.split(',')) {
      const trimmed = value.trim();
      if (trimmed === '') {
        throw invalidParameter(
          name,
          `${name}=${JSON.stringify(item)} contains an empty value; separate values with single commas.`,
        );
      }
      values.push(trimmed);
    }
  }
  return [...new Set(values)].sort();
}

function checkEach(name: string, values: string[], pattern: RegExp, expected: string): string[] {
  for (const value of values) {
    if (!pattern.test(value)) {
      throw invalidParameter(name, `${JSON.stringify(value)} is not ${expected}.`);
    }
  }
  return values;
}

function parseVersions(values: string[] | undefined): VersionSelector[] {
  if (values === undefined) {
    return [{ kind: 'last' }];
  }
  if (values.includes('all')) {
    return [{ kind: 'all' }];
  }
  const selectors: VersionSelector[] = [];
  const exact = new Set<string>();
  for (const value of values) {
    if (value === 'first' || value === 'last') {
      selectors.push({ kind: value });
      continue;
    }
    exact.add(versionKeyOf(value));
  }
  for (const version of [...exact].sort()) {
    selectors.push({ kind: 'at', version });
  }
  return selectors;
}

/** Returns the version key of a `match[version]` timestamp, so that versions compare as instants. */
function versionKeyOf(value: string): string {
  try {
    return versionKey(value);
  } catch {
    throw invalidParameter(
      'match[version]',
      `${JSON.stringify(value)} is not "first", "last", "all" or a timestamp such as 2024-01-02T03:04:05.000Z.`,
    );
  }
}

function addedAfterMicros(value: string): number {
  try {
    return parseTimestamp(value);
  } catch {
    throw invalidParameter(
      'added_after',
      `${JSON.stringify(value)} is not a TAXII timestamp; use the form 2024-01-02T03:04:05.123456Z.`,
    );
  }
}

/** Parses the filters of a request, reading only the `match[...]` keys that `support` enables. */
export function parseObjectFilters(query: QueryParameters, support: FilterSupport): ObjectFilters {
  const filters: ObjectFilters = { versions: [{ kind: 'last' }], latestSpecVersion: true };

  const addedAfter = singleValue(query, 'added_after');
  if (addedAfter !== undefined) {
    filters.addedAfter = addedAfterMicros(addedAfter);
  }

  if (support.id) {
    const ids = listValues(query, 'match[id]');
    if (ids !== undefined) {
      filters.ids = checkEach(
        'match[id]',
        ids,
        STIX_ID,
        'a STIX identifier such as indicator--<lower-case UUID>',
      );
    }
  }
  if (support.type) {
    const types = listValues(query, 'match[type]');
    if (types !== undefined) {
      filters.types = checkEach(
        'match[type]',
        types,
        STIX_TYPE,
        'a STIX type such as indicator (lower-case letters, digits, hyphens)',
      );
    }
  }
  // Without match[spec_version], TAXII 2.1 returns only the newest spec
  // version of each object; `latestSpecVersion` stays true then.
  if (support.specVersion) {
    const specVersions = listValues(query, 'match[spec_version]');
    if (specVersions !== undefined) {
      filters.specVersions = checkEach(
        'match[spec_version]',
        specVersions,
        SPEC_VERSION,
        'a STIX specification version such as 2.1',
      );
      filters.latestSpecVersion = false;
    }
  }
  if (support.version) {
    filters.versions = parseVersions(listValues(query, 'match[version]'));
  }
  return filters;
}

/** Parses `limit` and `next`. A limit above `maxPageSize` is lowered to it, not rejected. */
export function parsePageRequest(query: QueryParameters, maxPageSize: number): PageRequest {
  const page: PageRequest = { limit: maxPageSize };

  const limit = singleValue(query, 'limit');
  if (limit !== undefined) {
    if (!POSITIVE_INTEGER.test(limit)) {
      throw invalidParameter(
        'limit',
        `${JSON.stringify(limit)} is not a positive integer; use a number from 1 to ${maxPageSize}.`,
      );
    }
    page.limit = Math.min(Number(limit), maxPageSize);
  }

  const next = singleValue(query, 'next');
  if (next !== undefined) {
    page.next = next;
  }
  return page;
}

/**
 * Returns a canonical text of the filters, equal for requests that select
 * the same objects, so that a `next` cursor can be bound to them.
 */
export function normaliseFilters(filters: ObjectFilters): string {
  return JSON.stringify([
    filters.addedAfter ?? null,
    filters.ids ?? null,
    filters.types ?? null,
    filters.specVersions ?? null,
    filters.latestSpecVersion,
    filters.versions
      .map((selector) => (selector.kind === 'at' ? selector.version : selector.kind))
      .sort(),
  ]);
}

/** Builds the storage query for one page. */
export function toObjectQuery(
  collectionId: string,
  filters: ObjectFilters,
  limit: number,
): ObjectQuery {
  const query: ObjectQuery = { collectionId, limit, versions: filters.versions };
  if (filters.addedAfter !== undefined) {
    query.addedAfter = filters.addedAfter;
  }
  if (filters.ids !== undefined) {
    query.ids = filters.ids;
  }
  if (filters.types !== undefined) {
    query.types = filters.types;
  }
  if (filters.specVersions !== undefined) {
    query.specVersions = filters.specVersions;
  }
  if (filters.latestSpecVersion) {
    query.latestSpecVersion = true;
  }
  return query;
}
