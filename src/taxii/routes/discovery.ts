/** The discovery resource and the API root resource. */
import type Router from '@koa/router';

import type { ResolvedTaxiiDeps } from '../deps.js';
import { TAXII_MEDIA_TYPE } from '../media-type.js';
import { requireApiRoot, sendTaxii } from './common.js';

export function registerDiscoveryRoutes(router: Router, deps: ResolvedTaxiiDeps): void {
  const apiRootUrl = `${deps.publicUrl.replace(/\/+$/, '')}/taxii2/${deps.apiRootPath}/`;

  const discovery: Record<string, unknown> = { title: deps.title };
  if (deps.description !== undefined) {
    discovery['description'] = deps.description;
  }
  discovery['default'] = apiRootUrl;
  discovery['api_roots'] = [apiRootUrl];
  const discoveryBody = JSON.stringify(discovery);

  const apiRoot: Record<string, unknown> = { title: deps.title };
  if (deps.description !== undefined) {
    apiRoot['description'] = deps.description;
  }
  apiRoot['versions'] = [TAXII_MEDIA_TYPE];
  apiRoot['max_content_length'] = deps.maxContentLength;
  const apiRootBody = JSON.stringify(apiRoot);

  router.get('/', (ctx) => {
    sendTaxii(ctx, discoveryBody);
  });

  router.get('/:root', (ctx) => {
    requireApiRoot(ctx, deps);

    sendTaxii(ctx, apiRootBody);
  });
}
