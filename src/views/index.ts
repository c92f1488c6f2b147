/** Derived views of collections: their rendering, storage and HTTP routes. */
export {
  renderCollectionViews,
  renderView,
  type RenderContext,
  type ViewBuildReport,
  type ViewRenderResult,
} from './render.js';
export {
  createViewHandler,
  VIEW_PATH_PREFIX,
  type ViewHandler,
  type ViewHandlerDeps,
} from './handler.js';
export { DEFAULT_VALUE_TYPES } from './kinds.js';
export {
  isViewKind,
  PUBLIC_VIEW_ACCESS,
  VIEW_KIND_NAMES,
  viewSpec,
  type ViewAccess,
  type ViewFilter,
  type ViewKind,
  type ViewOrder,
  type ViewSpec,
} from './spec.js';
export { checkNetwork } from './access.js';
export { strongEtag, ifNoneMatchMatches } from './etag.js';
export type { ViewEntry, ViewTlp } from './model.js';
