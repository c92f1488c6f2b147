import { CollectionProcessing } from '../processing/policy.js';
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
