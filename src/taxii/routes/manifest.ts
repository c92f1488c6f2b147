/** The manifest resource of a collection. */
import type Router from '@koa/router';

import type { ResolvedTaxiiDeps } from '../deps.js';
import { normaliseFilters, parseObjectFilters } from '../filters.js';
import { formatTimestampMicros } from '../timestamp.js';
import {
  envelopeHead,
  fetchPage,
  requireCollection,
  requireReadable,
  sendTaxii,
  setDateAddedHeaders,
} from './common.js';
import { versionText } from './objects.js';

const MANIFEST_FILTERS = { id: true, type: true, version: true, specVersion: true };

export function registerManifestRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.get('/:root/collections/:collectionId/manifest', async (ctx) => {
    const collection = await requireCollection(ctx, deps);
    requireReadable(collection);

    const filters = parseObjectFilters(ctx.query, MANIFEST_FILTERS);

    const page = await fetchPage(
      ctx,
      deps,
      'manifest',
      collection.id,
      filters,
      normaliseFilters(filters),
      true,
    );

    setDateAddedHeaders(ctx, page);
    if (page.items.length === 0) {
      sendTaxii(ctx, '{}');
      return;
    }
    const records = page.items.map((item) => ({
      id: item.id,
      date_added: formatTimestampMicros(item.dateAdded),
      version: versionText(item),
      media_type: `application/stix+json;version=${item.specVersion}`,
    }));
    sendTaxii(ctx, `${envelopeHead(page)},"objects":${JSON.stringify(records)}}`);
  });
}
