/** Derived views of collections (EDL text lists), their rendering and their HTTP routes. */
export { renderCollectionViews, renderView } from './render.js';
export { createViewRouter, type ViewRouterDeps } from './routes.js';
export { VIEW_KINDS, isViewKind, type ViewKind, type ViewSpec } from './kinds.js';
export { strongEtag, ifNoneMatchMatches } from './etag.js';
