/** Rendering of derived views into stored bodies. */
import type { CollectionRecord, RenderedView, Store } from '../store/index.js';

import { strongEtag } from './etag.js';
import { VIEW_KINDS, type ViewSpec } from './kinds.js';

/**
 * Renders one view of a collection from its indicator entries: one value per
 * line, each line ending in `\n`, so an empty list is an empty body.
 */
export async function renderView(
  store: Store,
  collection: CollectionRecord,
  view: ViewSpec,
): Promise<RenderedView> {
  const kind = VIEW_KINDS[view.kind];
  const entries = await store.listIndicatorEntries(collection.id, kind.valueTypes);
  const lines = kind.lines(entries);
  const body = Buffer.from(lines.length === 0 ? '' : `${lines.join('\n')}\n`, 'utf8');
  return {
    collectionId: collection.id,
    name: view.name,
    contentType: kind.contentType,
    etag: strongEtag(body),
    body,
    renderedAt: Date.now() * 1000,
    entryCount: lines.length,
  };
}

/**
 * Renders the views of a collection and stores each one whose body changed,
 * so an unchanged view keeps its entity tag and `renderedAt`.
 *
 * NOTE: a view lists every value that the store holds for the collection.
 * It applies no allow-list or sanity guard of its own.
 */
export async function renderCollectionViews(
  store: Store,
  collection: CollectionRecord,
  views: ViewSpec[],
): Promise<void> {
  for (const view of views) {
    const rendered = await renderView(store, collection, view);
    const storedEtag = await store.getViewEtag(collection.id, view.name);
    if (storedEtag !== rendered.etag) {
      await store.putView(rendered);
    }
  }
}
