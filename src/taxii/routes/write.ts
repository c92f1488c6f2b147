/** Adding objects to a collection (POST) and deleting an object (DELETE). */
import { randomUUID } from 'node:crypto';

import type Router from '@koa/router';

import type { StatusRecord, VersionSelector } from '../../store/index.js';
import { authorizeCollection } from '../access.js';
import { addObjects } from '../add-objects.js';
import { envelopeObjects, parseJsonBody, readBodyText, requireTaxiiContentType } from '../body.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { parseObjectFilters, type QueryParameters } from '../filters.js';
import { toStatusResource } from '../status.js';
import { callerOf, sendTaxii } from './common.js';
import { requireObject } from './objects.js';
import { purgeStatusesNow } from './status.js';

const DELETE_FILTERS = { id: false, type: false, version: true, specVersion: true };

/** Current time in integer microseconds since the Unix epoch. */
function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

export function registerWriteRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.post('/:root/collections/:collectionId/objects', async (ctx) => {
    requireTaxiiContentType(ctx);

    const { collection } = await authorizeCollection(ctx, deps, 'write');

    const requestTimestamp = nowMicros();
    const objects = envelopeObjects(parseJsonBody(await readBodyText(ctx, deps.maxContentLength)));
    const outcome = await addObjects(deps.store, collection.id, objects);

    const status: StatusRecord = {
      id: randomUUID(),
      collectionId: collection.id,
      principal: callerOf(ctx) ?? '',
      requestTimestamp,
      status: 'complete',
      totalCount: objects.length,
      successes: outcome.successes,
      failures: outcome.failures,
      pendings: [],
    };
    await deps.store.putStatus(status);
    await purgeStatusesNow(deps, requestTimestamp);
    deps.logger.info(
      {
        collectionId: collection.id,
        principal: status.principal,
        count: status.totalCount,
        failures: status.failures.length,
      },
      'objects added',
    );

    sendTaxii(ctx, JSON.stringify(toStatusResource(status)), 202);
  });

  router.delete('/:root/collections/:collectionId/objects/:objectId', async (ctx) => {
    const { collection } = await authorizeCollection(ctx, deps, 'delete');

    // Only the two filters of this endpoint are read; without match[version]
    // and match[spec_version], every version of the object is deleted.
    const query: QueryParameters = {
      'match[version]': ctx.query['match[version]'],
      'match[spec_version]': ctx.query['match[spec_version]'],
    };
    const filters = parseObjectFilters(query, DELETE_FILTERS);
    const versions: VersionSelector[] =
      query['match[version]'] === undefined ? [{ kind: 'all' }] : filters.versions;
    const objectId = ctx.params['objectId'] ?? '';
    await requireObject(deps, collection.id, objectId);

    const deleted = await deps.store.deleteObjectVersions({
      collectionId: collection.id,
      id: objectId,
      versions,
      ...(filters.specVersions === undefined ? {} : { specVersions: filters.specVersions }),
    });
    deps.logger.info(
      { collectionId: collection.id, objectId, principal: callerOf(ctx), count: deleted },
      'object versions deleted',
    );

    sendTaxii(ctx, '');
  });
}
