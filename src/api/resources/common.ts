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
