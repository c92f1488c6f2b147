/** The collections resource and the collection resource. */
import type Router from '@koa/router';

import type { CollectionRecord } from '../../store/index.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { STIX_MEDIA_TYPE } from '../media-type.js';
import { requireApiRoot, requireCollection, sendTaxii } from './common.js';

/** Presents a collection as the TAXII 2.1 collection resource. */
export function toCollectionResource(collection: CollectionRecord): Record<string, unknown> {
  const resource: Record<string, unknown> = { id: collection.id, title: collection.title };
  if (collection.description !== undefined) {
    resource['description'] = collection.description;
  }
  resource['alias'] = collection.alias;
  resource['can_read'] = collection.canRead;
  resource['can_write'] = collection.canWrite;
  resource['media_types'] =
    collection.mediaTypes.length > 0 ? collection.mediaTypes : [STIX_MEDIA_TYPE];
  return resource;
}

export function registerCollectionRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.get('/:root/collections', async (ctx) => {
    requireApiRoot(ctx, deps);

    const collections = await deps.store.listCollections();

    // The collections property is optional and omitted when there is none.
    const body =
      collections.length === 0 ? {} : { collections: collections.map(toCollectionResource) };
    sendTaxii(ctx, JSON.stringify(body));
  });

  router.get('/:root/collections/:collectionId', async (ctx) => {
    const collection = await requireCollection(ctx, deps);

    sendTaxii(ctx, JSON.stringify(toCollectionResource(collection)));
  });
}
