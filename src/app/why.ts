/**
 * Explains one value of a collection: which sources listed it and when,
 * whether it is active, its merged confidence, and what keeps it out of
 * each view. `scripts/why.mjs` prints it.
 */
import { detectAndCanonicalize } from '../processing/index.js';
import { mergeConfidence } from '../processing/confidence.js';
import type { SightingRecord, Store } from '../store/index.js';
import { encodedValues } from '../views/data.js';
import { DEFAULT_VALUE_TYPES } from '../views/kinds.js';
import { filterEntries, toViewEntries, type FilterCounts } from '../views/select.js';
import type { CollectionConfig, Config } from './config.js';
import { processingFor, refreshAllowSources } from './processing.js';

export interface ValueExplanation {
  collectionId: string;
  alias: string;
  /** The value as given, and canonical. */
  input: string;
  valueType?: string;
  value?: string;
  /** Why the input is no value at all, when it is not. */
  invalid?: string;
  /**
   * `active` while a source lists it; `withdrawn`, `expired` or `removed` (by
   * an analyst, its indicator revoked) after; `unknown` when never listed.
   */
  state: 'active' | 'withdrawn' | 'expired' | 'removed' | 'unknown';
  sightings: (Omit<SightingRecord, 'firstSeen' | 'lastSeen' | 'withdrawnAt'> & {
    firstSeen: string;
    lastSeen: string;
    withdrawnAt?: string;
  })[];
  /** The indicators revoked because an analyst removed the value, oldest first. */
  revocations: { indicatorId: string; revokedAt: string; successorId: string }[];
  /** Merged confidence of the active sources, by the collection's rule. */
  confidence?: number;
  /** What the guards and the allow-list decide for the value. */
  screen: string;
  /** Per view: listed, or the reason it is not. */
  views: { name: string; listed: boolean; reason?: string }[];
}

const iso = (micros: number) => new Date(micros / 1000).toISOString();

export function findCollection(config: Config, aliasOrId: string): CollectionConfig | undefined {
  return config.collections.find((c) => c.alias === aliasOrId || c.id === aliasOrId);
}

export async function explainValue(
  store: Store,
  collection: CollectionConfig,
  input: string,
): Promise<ValueExplanation> {
  const explanation: ValueExplanation = {
    collectionId: collection.id,
    alias: collection.alias,
    input,
    state: 'unknown',
    sightings: [],
    revocations: [],
    screen: 'not checked',
    views: [],
  };
  const parsed = detectAndCanonicalize(input);
  if (!parsed.ok) {
    explanation.invalid = parsed.reason;
    return explanation;
  }
  explanation.valueType = parsed.type;
  explanation.value = parsed.value;

  await refreshAllowSources(collection, store);
  const processing = processingFor(collection);
  const sightings = await store.listSightings(collection.id, parsed.type, parsed.value);
  explanation.sightings = sightings.map((s) => ({
    ...s,
    firstSeen: iso(s.firstSeen),
    lastSeen: iso(s.lastSeen),
    withdrawnAt: s.withdrawnAt === undefined ? undefined : iso(s.withdrawnAt),
  }));
  explanation.revocations = (
    await store.listRevocations(collection.id, parsed.type, parsed.value)
  ).map((r) => ({ ...r, revokedAt: iso(r.revokedAt) }));
  const active = sightings.filter((s) => s.withdrawnAt === undefined);
  if (active.length > 0) {
    explanation.state = 'active';
    const profiles = active.map(
      (s) => processing.versions.sources.get(s.sourceId) ?? processing.versions.fallback,
    );
    explanation.confidence = mergeConfidence(processing.versions.confidenceRule, profiles);
  } else if (sightings.length > 0) {
    const latest = [...sightings].sort((a, b) => (b.withdrawnAt ?? 0) - (a.withdrawnAt ?? 0))[0];
    explanation.state = latest?.withdrawalReason === 'expired' ? 'expired' : 'withdrawn';
    // Removed until a source lists the value again under the successor id.
    const current = sightings[0]!.indicatorId;
    if (explanation.revocations.some((r) => r.successorId === current)) {
      const page = await store.queryObjects({
        collectionId: collection.id,
        ids: [current],
        limit: 1,
      });
      if (page.items.length === 0) explanation.state = 'removed';
    }
  }

  const verdict = processing.screen.judge(parsed.type, parsed.value);
  switch (verdict.kind) {
    case 'keep':
      explanation.screen = 'passes the guards and the allow-list';
      break;
    case 'refused':
      explanation.screen = `refused by the ${verdict.rule} guard`;
      break;
    case 'allowed':
      explanation.screen = `allow-listed by ${verdict.entry}`;
      break;
    case 'split':
      explanation.screen = `partly allow-listed; published as ${verdict.rest.map((p) => p.value).join(', ')}`;
      break;
  }

  const entry =
    active.length === 0
      ? undefined
      : toViewEntries(
          [
            {
              valueType: parsed.type,
              value: parsed.value,
              indicatorId: active[0]!.indicatorId,
              firstSeen: Math.min(...active.map((s) => s.firstSeen)),
              lastSeen: Math.max(...active.map((s) => s.lastSeen)),
              sources: active.map((s) => s.sourceId).sort(),
            },
          ],
          processing.versions,
          collection.tlp === 'white' ? 'clear' : collection.tlp,
        )[0];
  const now = Date.now() * 1000;
  for (const view of collection.views) {
    const types = view.filter.types ?? DEFAULT_VALUE_TYPES[view.kind];
    let reason: string | undefined;
    if (!(types as string[]).includes(parsed.type)) {
      reason = `the ${view.kind} view lists no ${parsed.type} values`;
    } else if (explanation.state !== 'active' || entry === undefined) {
      reason = `the value is ${explanation.state}`;
    } else if (verdict.kind === 'refused' || verdict.kind === 'allowed') {
      reason = explanation.screen;
    } else {
      const counts: FilterCounts = {};
      const kept = filterEntries(
        [entry],
        [active.map((s) => s.sourceId)],
        { ...view.filter, types },
        now,
        counts,
      );
      if (kept.length === 0) {
        reason = `left out by the view filter ${Object.keys(counts).join(', ')} (${describeFilter(view.filter, entry.confidence)})`;
      } else if (view.maxEntries !== undefined) {
        const stored = await store.getViewData(collection.id, view.name);
        if (stored !== undefined && !encodedValues(stored.data).has(parsed.value)) {
          reason = `cut: the view holds at most ${view.maxEntries} entries and keeps those of higher confidence or more recent sightings`;
        }
      }
    }
    explanation.views.push(
      reason === undefined
        ? { name: view.name, listed: true }
        : { name: view.name, listed: false, reason },
    );
  }
  return explanation;
}

function describeFilter(
  filter: CollectionConfig['views'][number]['filter'],
  confidence: number,
): string {
  const parts: string[] = [`confidence ${confidence}`];
  if (filter.minConfidence !== undefined) parts.push(`minConfidence ${filter.minConfidence}`);
  if (filter.belowConfidence !== undefined) parts.push(`belowConfidence ${filter.belowConfidence}`);
  if (filter.sources) parts.push(`sources ${filter.sources.join(', ')}`);
  if (filter.labels) parts.push(`labels ${filter.labels.join(', ')}`);
  if (filter.maxTlp) parts.push(`maxTlp ${filter.maxTlp}`);
  return parts.join('; ');
}
