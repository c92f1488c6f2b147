/** The collections resource and the collection resource. */
import type Router from '@koa/router';

import { permissionsFor, type Permissions } from '../../auth/index.js';
import type { CollectionRecord } from '../../store/index.js';
import { authorizeCollection } from '../access.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { STIX_MEDIA_TYPE } from '../media-type.js';
import { callerOf, requireApiRoot, sendTaxii } from './common.js';

/** Presents a collection as the TAXII 2.1 collection resource; `can_read`/`can_write` describe the caller. */
export function toCollectionResource(
  collection: CollectionRecord,
  permissions: Permissions,
): Record<string, unknown> {
  const resource: Record<string, unknown> = { id: collection.id, title: collection.title };
  if (collection.description !== undefined) {
    resource['description'] = collection.description;
  }
  resource['alias'] = collection.alias;
  resource['can_read'] = permissions.read;
  resource['can_write'] = permissions.write;
  resource['media_types'] =
    collection.mediaTypes.length > 0 ? collection.mediaTypes : [STIX_MEDIA_TYPE];
  return resource;
}

export function registerCollectionRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.get('/:root/collections', async (ctx) => {
    requireApiRoot(ctx, deps);

    const principal = callerOf(ctx);
    const visible = (await deps.store.listCollections()).flatMap((collection) => {
      const permissions = permissionsFor(collection, principal);
      return permissions.read || permissions.write
        ? [toCollectionResource(collection, permissions)]
        : [];
    });

    // The collections property is optional and omitted when there is none.
    sendTaxii(ctx, JSON.stringify(visible.length === 0 ? {} : { collections: visible }));
  });

  router.get('/:root/collections/:collectionId', async (ctx) => {
    const { collection, permissions } = await authorizeCollection(ctx, deps, 'visible');

    sendTaxii(ctx, JSON.stringify(toCollectionResource(collection, permissions)));
  });
}
