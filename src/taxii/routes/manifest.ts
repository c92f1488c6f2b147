/** The manifest resource of a collection. */
import type Router from '@koa/router';

import { authorizeCollection } from '../access.js';
import type { ResolvedTaxiiDeps } from '../deps.js';
import { parseObjectFilters } from '../filters.js';
import {
  envelopeHead,
  fetchPage,
  sendTaxii,
  setPageDateAddedHeaders,
  taxiiTimestamp,
  versionText,
} from './common.js';

const MANIFEST_FILTERS = { id: true, type: true, version: true, specVersion: true };

export function registerManifestRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  router.get('/:root/collections/:collectionId/manifest', async (ctx) => {
    const { collection } = await authorizeCollection(ctx, deps, 'read');

    const filters = parseObjectFilters(ctx.query, MANIFEST_FILTERS);

    const page = await fetchPage(ctx, deps, {
      resource: 'manifest',
      collectionId: collection.id,
      filters,
      withoutBody: true,
    });

    setPageDateAddedHeaders(ctx, page);
    if (page.items.length === 0) {
      sendTaxii(ctx, '{}');
      return;
    }
    const records = page.items.map((item) => ({
      id: item.id,
      date_added: taxiiTimestamp(item.dateAdded),
      version: versionText(item),
      media_type: `application/stix+json;version=${item.specVersion}`,
    }));
    sendTaxii(ctx, `${envelopeHead(page)},"objects":${JSON.stringify(records)}}`);
  });
}
