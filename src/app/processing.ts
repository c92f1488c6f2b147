import { CollectionProcessing } from '../processing/policy.js';
import { storedAllowEntries } from '../sources/index.js';
import type { Store } from '../store/index.js';
import type { CollectionConfig } from './config.js';

const compiled = new WeakMap<CollectionConfig, CollectionProcessing>();

/**
 * Returns the compiled processing policy of a collection: its screen, its
 * withdrawal policy, its aging rules and its sources' profiles. Compiling
 * reads the allow-list files once per collection config.
 */
export function processingFor(collection: CollectionConfig): CollectionProcessing {
  let processing = compiled.get(collection);
  if (processing === undefined) {
    processing = new CollectionProcessing({
      collectionId: collection.id,
      screen: collection.processing.screen,
      withdrawal: collection.processing.withdrawal,
      confidenceRule: collection.processing.confidenceRule,
      sources: collection.sources.map((source) => ({
        id: source.id,
        name: source.name,
        confidence: source.confidence,
        weight: source.confidenceWeight ?? 1,
        tlp: source.tlp,
        indicatorTypes: source.indicatorTypes,
        labels: source.labels,
        aging: source.aging ?? { default: { basis: 'never' }, byType: {} },
      })),
    });
    compiled.set(collection, processing);
  }
  return processing;
}

/**
 * Loads the current values of the collection's allow-list sources from the
 * store into its screen. Any worker may have polled them, so this runs
 * before each poll and each render; it costs one state read per source.
 */
export async function refreshAllowSources(
  collection: CollectionConfig,
  store: Store,
): Promise<void> {
  const processing = processingFor(collection);
  for (const source of collection.sources) {
    if (source.role !== 'allow-list') continue;
    const state = await store.getSourceState(collection.id, source.id);
    processing.setSourceAllowList(source.id, storedAllowEntries(state));
  }
}
