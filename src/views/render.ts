/**
 * Rendering of views: from a collection's active values to a stored body,
 * the entry data for requests with parameters, and a build log that records
 * what was listed, left out, cut, rewritten or dropped, and why.
 */
import {
  emptyScreenCounts,
  type Screen,
  type ScreenCounts,
  type ValueType,
} from '../processing/index.js';
import type { VersionContext } from '../processing/versions.js';
import type { CollectionRecord, IndicatorEntry, RenderedView, Store } from '../store/index.js';
import { decodeEntries, encodedValues, encodeEntries } from './data.js';
import { strongEtag } from './etag.js';
import { formatView, viewValueTypes } from './kinds.js';
import { BuildLog, type BuildLogEvent, type ViewEntry, type ViewTlp } from './model.js';
import {
  capEntries,
  filterEntries,
  orderEntries,
  toViewEntries,
  type FilterCounts,
} from './select.js';
import type { ViewSpec } from './spec.js';
import { renderStixBundle } from './stix-bundle.js';

/** Everything rendering needs to know about a collection besides its views. */
export interface RenderContext {
  store: Store;
  collection: CollectionRecord;
  /** Source profiles and the confidence rule, as hub indicator versions use them. */
  versions: VersionContext;
  /** The collection's own TLP; no entry is marked less restrictive. */
  collectionTlp: ViewTlp;
  /** The collection's guards and allow-list, applied again to every entry. */
  screen?: Screen;
  /** Micros of the render. Default now. */
  now?: number;
  /** Whether to return the added and removed entries (for forwarders). Default false. */
  withChanges?: boolean;
}

/** The build log of one render, stored with the view as JSON. */
export interface ViewBuildReport {
  view: string;
  kind: string;
  renderedAt: number;
  durationMs: number;
  /** Active values of the view's types before the screen and the filter. */
  candidates: number;
  /**
   * Values of the collection (all types, when views render together) that
   * the screen kept out now: a rule added after they were stored.
   */
  screened: Pick<ScreenCounts, 'refused' | 'allowListed' | 'split'>;
  /** Values left out by each condition of the view's filter. */
  filteredOut: FilterCounts;
  /** Values cut because the view lists at most `maxEntries`. */
  cut: number;
  maxEntries?: number;
  /** Entries listed: passed to the format. */
  entries: number;
  /** Values listed now and not by the previous render, and the reverse. */
  added: number;
  removed: number;
  /** Format rewrites and drops (a URL port stripped, an over-long entry). */
  rewritten: number;
  dropped: number;
  /** The first format events, up to a bound. */
  events: BuildLogEvent[];
}

export interface ViewRenderResult {
  spec: ViewSpec;
  /** False when the body, data and etag are the same as the stored render's. */
  changed: boolean;
  view: RenderedView;
  report: ViewBuildReport;
  /** With `withChanges`: entries listed now and not before, and the reverse. */
  addedEntries?: ViewEntry[];
  removedEntries?: ViewEntry[];
}

/** Drops refused and allowed entries, replaces split ones by their remainders, and removes duplicates. */
function screenEntries(
  entries: IndicatorEntry[],
  screen: Screen,
  counts: ScreenCounts,
): IndicatorEntry[] {
  const wrapped = entries.map((entry) => ({
    type: entry.valueType as ValueType,
    value: entry.value,
    entry,
  }));
  const kept = screen.filter(wrapped, counts, (original, part) => ({
    ...part,
    entry: original.entry,
  }));
  const seen = new Set<string>();
  const result: IndicatorEntry[] = [];
  for (const { type, value, entry } of kept) {
    if (seen.has(value)) continue;
    seen.add(value);
    result.push(
      type === entry.valueType && value === entry.value
        ? entry
        : { ...entry, valueType: type, value },
    );
  }
  return result;
}

/** The active values of some types, screened and merged once for every view that lists them. */
interface Candidates {
  /** Values before the screen, by type. */
  storedByType: Map<string, number>;
  screenCounts: ScreenCounts;
  entries: ViewEntry[];
  /** Source ids of each entry, index for index. */
  sourceIds: string[][];
}

async function loadCandidates(
  context: RenderContext,
  types: readonly string[],
): Promise<Candidates> {
  const stored = await context.store.listIndicatorEntries(context.collection.id, [...types]);
  const storedByType = new Map<string, number>();
  for (const entry of stored) {
    storedByType.set(entry.valueType, (storedByType.get(entry.valueType) ?? 0) + 1);
  }
  const screenCounts = emptyScreenCounts();
  const screened =
    context.screen === undefined ? stored : screenEntries(stored, context.screen, screenCounts);
  return {
    storedByType,
    screenCounts,
    entries: toViewEntries(screened, context.versions, context.collectionTlp),
    sourceIds: screened.map((entry) => entry.sources),
  };
}

/** Renders one view; stores nothing. */
export async function renderView(
  context: RenderContext,
  spec: ViewSpec,
  candidates?: Candidates,
): Promise<ViewRenderResult> {
  const started = performance.now();
  const now = context.now ?? Date.now() * 1000;
  const { store, collection } = context;
  const types = viewValueTypes(spec);
  const prepared = candidates ?? (await loadCandidates(context, types));
  const screenCounts = prepared.screenCounts;

  const filteredOut: FilterCounts = {};
  const filtered = filterEntries(
    prepared.entries,
    prepared.sourceIds,
    { ...spec.filter, types },
    now,
    filteredOut,
  );
  // Values of other types are no candidates of this view, so they are not counted as left out.
  delete filteredOut.types;
  const { kept, cut } = capEntries(filtered, spec.maxEntries);
  const entries = orderEntries(kept, spec);

  const log = new BuildLog();
  const output =
    spec.kind === 'stix-bundle'
      ? await renderStixBundle(store, collection.id, entries)
      : formatView(spec, entries, log, { renderedAt: now, collectionAlias: collection.alias });
  const body = Buffer.from(output.body, 'utf8');
  const data = encodeEntries(entries);
  const etag = strongEtag(body);
  const dataEtag = strongEtag(data);

  const previous = await store.getViewData(collection.id, spec.name);
  let added: number;
  let removed: number;
  let addedEntries: ViewEntry[] | undefined;
  let removedEntries: ViewEntry[] | undefined;
  if (context.withChanges === true) {
    const before = previous === undefined ? [] : decodeEntries(previous.data);
    const beforeValues = new Set(before.map((entry) => entry.value));
    const nowValues = new Set(entries.map((entry) => entry.value));
    addedEntries = entries.filter((entry) => !beforeValues.has(entry.value));
    removedEntries = before.filter((entry) => !nowValues.has(entry.value));
    added = addedEntries.length;
    removed = removedEntries.length;
  } else {
    const beforeValues = previous === undefined ? new Set<string>() : encodedValues(previous.data);
    added = 0;
    for (const entry of entries) {
      if (beforeValues.has(entry.value)) beforeValues.delete(entry.value);
      else added += 1;
    }
    removed = beforeValues.size;
  }

  const report: ViewBuildReport = {
    view: spec.name,
    kind: spec.kind,
    renderedAt: now,
    durationMs: Math.round(performance.now() - started),
    candidates: types.reduce((sum, type) => sum + (prepared.storedByType.get(type) ?? 0), 0),
    screened: {
      refused: screenCounts.refused,
      allowListed: screenCounts.allowListed,
      split: screenCounts.split,
    },
    filteredOut,
    cut,
    ...(spec.maxEntries === undefined ? {} : { maxEntries: spec.maxEntries }),
    entries: entries.length,
    added,
    removed,
    rewritten: log.counts.rewritten,
    dropped: log.counts.dropped,
    events: log.events,
  };
  const view: RenderedView = {
    collectionId: collection.id,
    name: spec.name,
    contentType: output.contentType,
    etag,
    body,
    renderedAt: now,
    entryCount: entries.length - log.counts.dropped,
    data,
    dataEtag,
    log: JSON.stringify(report),
  };
  // A render whose body and entries are the same is stored again only when
  // its counts changed (more values cut, say), so the build log stays true.
  let changed = previous === undefined || previous.etag !== etag || previous.dataEtag !== dataEtag;
  if (!changed) {
    const before = await store.getViewLog(collection.id, spec.name);
    changed = before === undefined || countsKey(before.log) !== countsKey(view.log);
  }
  return {
    spec,
    changed,
    view,
    report,
    ...(addedEntries === undefined ? {} : { addedEntries, removedEntries }),
  };
}

/**
 * Renders the views of a collection one after the other and stores each
 * one whose body or entries changed, so that an unchanged view keeps its
 * entity tag. A view whose render fails keeps its previous render in
 * service; the failure is returned and the other views still render.
 */
export async function renderCollectionViews(
  context: RenderContext,
  specs: readonly ViewSpec[],
): Promise<{ results: ViewRenderResult[]; failures: { spec: ViewSpec; error: unknown }[] }> {
  const results: ViewRenderResult[] = [];
  const failures: { spec: ViewSpec; error: unknown }[] = [];
  // Loaded, screened and merged once for all the views.
  const types = [...new Set(specs.flatMap((spec) => viewValueTypes(spec)))];
  const candidates = specs.length === 0 ? undefined : await loadCandidates(context, types);
  for (const spec of specs) {
    try {
      const result = await renderView(context, spec, candidates);
      if (result.changed) await context.store.putView(result.view);
      results.push(result);
    } catch (error) {
      failures.push({ spec, error });
    }
  }
  return { results, failures };
}

/** Returns the counts of a build log, without its time and events, as comparable text. */
function countsKey(log: string): string {
  try {
    const { candidates, screened, filteredOut, cut, entries, rewritten, dropped } = JSON.parse(
      log,
    ) as Partial<ViewBuildReport>;
    return JSON.stringify([candidates, screened, filteredOut, cut, entries, rewritten, dropped]);
  } catch {
    return '';
  }
}
