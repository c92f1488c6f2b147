/** Pieces that several resource modules share: path parameters, paging and lookups. */
import type { CollectionConfig } from '../../app/config.js';
import type { ApiDeps } from '../deps.js';
import { ApiError, quote } from '../errors.js';
import { DEFAULT_LIMIT } from '../paging.js';
import type { ApiRequest } from '../route.js';

export const COLLECTION_PARAM = {
  collection: {
    description: 'Alias or id of the collection.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' },
  },
};

/** Microseconds per unit of a duration such as `30d`, `12h` or `90m`. */
export const DURATION_MICROS: Record<string, number> = { m: 60e6, h: 3600e6, d: 86400e6 };

/**
 * Returns a future instant given as RFC 3339 text, in microseconds, or
 * rejects it with 422 naming `field`. A leap second (`:60`) passes the
 * schema's date-time format but is no instant JavaScript can hold.
 */
export function futureMicros(text: string, now: number, field: string): number {
  const at = Date.parse(text) * 1000;
  if (Number.isNaN(at)) {
    throw new ApiError(
      422,
      'unprocessable',
      `expiresAt ${quote(text)} is not a time the hub can use; give a time such as 2030-01-31T00:00:00Z, without a leap second`,
      { field, value: text },
    );
  }
  if (!(at > now)) {
    throw new ApiError(422, 'unprocessable', `expiresAt ${quote(text)} is not in the future`, {
      field,
      value: text,
    });
  }
  return at;
}

/** Returns the `limit` of a list request, or the default. */
export function limitOf(request: ApiRequest): number {
  return (request.query.limit as number | undefined) ?? DEFAULT_LIMIT;
}

/** Returns the definition in force of a collection, by alias or id; 404 when there is none. */
export function inForce(deps: ApiDeps, aliasOrId: string): CollectionConfig {
  const config = deps.definitions.find(aliasOrId);
  if (config === undefined) {
    throw new ApiError(
      404,
      'not_found',
      `collection ${quote(aliasOrId)} does not exist or its definition is not in force; see GET /api/v1/collections`,
    );
  }
  return config;
}
