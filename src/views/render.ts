/** Rendering of derived views into stored bodies. */
import { emptyScreenCounts, type Screen, type ValueType } from '../processing/index.js';
import type { CollectionRecord, IndicatorEntry, RenderedView, Store } from '../store/index.js';

import { strongEtag } from './etag.js';
import { VIEW_KINDS, type ViewSpec } from './kinds.js';

/**
 * Renders one view of a collection from its active indicator entries: one
 * value per line, each line ending in `\n`, so an empty list is an empty
 * body. With a `screen`, entries pass the collection's guards and allow-list
 * again, so a rule added after a value was stored applies at once.
 */
export async function renderView(
  store: Store,
  collection: CollectionRecord,
  view: ViewSpec,
  screen?: Screen,
): Promise<RenderedView> {
  const kind = VIEW_KINDS[view.kind];
  const stored = await store.listIndicatorEntries(collection.id, kind.valueTypes);
  const entries = screen === undefined ? stored : screenEntries(stored, screen);
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

/** Drops refused and allowed entries, replaces split ones by their remainders, and removes duplicates. */
function screenEntries(entries: IndicatorEntry[], screen: Screen): IndicatorEntry[] {
  const wrapped = entries.map((entry) => ({
    type: entry.valueType as ValueType,
    value: entry.value,
    entry,
  }));
  const kept = screen.filter(wrapped, emptyScreenCounts(), (original, part) => ({
    ...part,
    entry: original.entry,
  }));
  const seen = new Set<string>();
  const result: IndicatorEntry[] = [];
  for (const { type, value, entry } of kept) {
    if (seen.has(value)) continue;
    seen.add(value);
    result.push({ ...entry, valueType: type, value });
  }
  return result;
}

/**
 * Renders the views of a collection and stores each one whose body changed,
 * so an unchanged view keeps its entity tag and `renderedAt`. Without a
 * `screen`, a view lists every active value that the store holds.
 */
export async function renderCollectionViews(
  store: Store,
  collection: CollectionRecord,
  views: ViewSpec[],
  screen?: Screen,
): Promise<void> {
  for (const view of views) {
    const rendered = await renderView(store, collection, view, screen);
    const storedEtag = await store.getViewEtag(collection.id, view.name);
    if (storedEtag !== rendered.etag) {
      await store.putView(rendered);
    }
  }
}
