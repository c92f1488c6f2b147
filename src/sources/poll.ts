import { createHash } from 'node:crypto';

import type { Logger } from 'pino';
import {
  DEFAULT_SCREEN_SETTINGS,
  emptyScreenCounts,
  nonZeroRefused,
  type GuardRule,
  type ScreenExample,
} from '../processing/index.js';
import { CollectionProcessing, DEFAULT_WITHDRAWAL_POLICY, NO_AGING } from '../processing/policy.js';
import { buildHubVersion } from '../processing/versions.js';
import {
  buildIdentity,
  indicatorId,
  patternFor,
  tlpMarking,
  toStoredVersion,
  type TlpLevel,
} from '../stix/index.js';
import type {
  ExpireSummary,
  ObjectVersionInput,
  PollResultSummary,
  SightingInput,
  SourceState,
  Store,
  StreamedCounts,
} from '../store/index.js';
import {
  collectStream,
  countRepeats,
  SOURCE_KINDS,
  type ReadResult,
  type ReadStats,
  type SourceEntry,
  type SourceSettings,
} from './kinds.js';

/** What a poll needs to know about its source; the collection config provides it. */
export interface PollSource extends SourceSettings {
  confidence: number;
  tlp: TlpLevel;
  indicatorTypes: readonly string[];
  labels: readonly string[];
  /** `allow-list`: the values join the collection's allow-list instead of becoming indicators. */
  role?: 'block' | 'allow-list';
}

/** The cursor key under which an allow-list source keeps its current values. */
export const ALLOW_ENTRIES_KEY = 'allowEntries';

/** Returns the values an allow-list source stored at its last applied poll. */
export function storedAllowEntries(state: SourceState | undefined): string[] {
  const values = state?.cursor?.[ALLOW_ENTRIES_KEY];
  return Array.isArray(values) ? values.filter((value) => typeof value === 'string') : [];
}

export interface PollDeps {
  store: Store;
  logger: Logger;
  userAgent: string;
  /** Current time in microseconds; tests may pin it. */
  nowMicros?: () => number;
  /**
   * The collection's processing policy. Without it the poll uses the default
   * guards, all built-in allow-lists and a policy that knows this source only.
   */
  processing?: CollectionProcessing;
}

export type PollOutcome = 'applied' | 'not-modified' | 'failed';

/** The run report of one poll, stored as the source's last report and logged. */
export interface PollReport extends Partial<ReadStats> {
  outcome: PollOutcome;
  collectionId: string;
  sourceId: string;
  startedAt: string;
  durationMs: number;
  /** STIX objects the source delivered as they are. */
  objectsRead?: number;
  created?: number;
  refreshed?: number;
  objectsAdded?: number;
  /** Objects whose (id, version) was stored already with another body; the stored one stays. */
  conflicts?: number;
  /** Values listed again after every sighting of them had been withdrawn. */
  reactivated?: number;
  /** Values this source stopped listing that stay active until more polls miss them. */
  missed?: number;
  /** Values withdrawn because this complete poll no longer listed them. */
  withdrawn?: number;
  /** Values whose set of sources changed. */
  merged?: number;
  /** Values that aging expired right after this poll, in the whole collection. */
  expired?: number;
  /** Values that the allow-list removed whole. */
  allowListed?: number;
  /** IP networks or ranges that the allow-list split; their remainders are stored. */
  split?: number;
  /** Values that a sanity guard rejected, per rule (rules with a count of zero left out). */
  refused?: Partial<Record<GuardRule, number>>;
  /** A few values kept out by the guards or the allow-list, with the reason. */
  screenExamples?: ScreenExample[];
  /**
   * False when the poll was complete but its valid count fell by more than
   * the allowed share from the previous complete poll: it then withdraws
   * nothing and its validators are not kept, so the next poll fetches again.
   */
  plausible?: boolean;
  /**
   * True when the body was byte for byte that of the previous complete poll,
   * with the same screen and settings: it was not parsed again, and the
   * sightings that poll listed were refreshed in one step.
   */
  unchangedList?: boolean;
  /** For an allow-list source: the entries it now adds to the collection's allow-list. */
  allowEntries?: number;
  error?: string;
}

let defaultProcessing: Map<string, CollectionProcessing> | undefined;

/** A policy for a caller that passes none: default guards and all built-in allow-lists, compiled once. */
function fallbackProcessing(collectionId: string, source: PollSource): CollectionProcessing {
  defaultProcessing ??= new Map();
  const key = JSON.stringify([collectionId, source.id]);
  let processing = defaultProcessing.get(key);
  if (processing === undefined) {
    processing = new CollectionProcessing({
      collectionId,
      screen: DEFAULT_SCREEN_SETTINGS,
      withdrawal: DEFAULT_WITHDRAWAL_POLICY,
      confidenceRule: 'max',
      sources: [
        {
          id: source.id,
          name: source.name,
          confidence: source.confidence,
          weight: 1,
          tlp: source.tlp,
          indicatorTypes: source.indicatorTypes,
          labels: source.labels,
          aging: NO_AGING,
        },
      ],
    });
    defaultProcessing.set(key, processing);
  }
  return processing;
}

function defaultNowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * Polls one source into its collection. A kind with `readStream` (text
 * lists, CSV) is parsed while the store stages its batches. The store
 * applies the result in one step, so a failure at any point (fetch, parse,
 * judgement, a crash) leaves the collection as it was. A failed poll changes only the source's last
 * report; its validators and cursor stay, so the next poll fetches again.
 */
export async function pollSource(
  deps: PollDeps,
  collectionId: string,
  source: PollSource,
): Promise<PollReport> {
  const now = deps.nowMicros ?? defaultNowMicros;
  const startedMicros = now();
  const started = performance.now();
  const log = deps.logger.child({ collectionId, sourceId: source.id });
  const previous = await deps.store.getSourceState(collectionId, source.id);
  const report: PollReport = {
    outcome: 'failed',
    collectionId,
    sourceId: source.id,
    startedAt: new Date(startedMicros / 1000).toISOString(),
    durationMs: 0,
  };
  const elapsed = () => Math.round(performance.now() - started);

  try {
    const kind = SOURCE_KINDS[source.kind];
    if (!kind) throw new Error(`unknown source kind ${JSON.stringify(source.kind)}`);

    const processing = deps.processing ?? fallbackProcessing(collectionId, source);
    const fingerprint = pollFingerprint(processing, source);
    const shortcut =
      source.role === 'allow-list' ? undefined : unchangedShortcut(previous, fingerprint);
    let read = await (kind.readStream ?? kind.read).call(kind, {
      source,
      previous,
      userAgent: deps.userAgent,
      logger: log,
      unchangedDigest: shortcut?.bodyDigest,
    });
    if (read.kind === 'unchanged' && shortcut !== undefined && previous !== undefined) {
      const state: SourceState = {
        ...previous,
        etag: read.etag,
        lastModified: read.lastModified,
        lastSuccessAt: startedMicros,
        cursor: withUnchanged(previous.cursor, fingerprint, read.bodyDigest, startedMicros),
      };
      Object.assign(report, { bytes: read.bytes, valid: previous.lastValidCount ?? 0 });
      const applied = await deps.store.applyUnchangedPoll({
        collectionId,
        sourceId: source.id,
        seenAt: startedMicros,
        since: shortcut.at,
        sightings: [],
        buildIndicator: () => {
          throw new Error('an unchanged list creates no indicator');
        },
        buildVersion: (change) => buildHubVersion(change, processing.versions),
        missing: { withdrawAfter: processing.withdrawal.missesBeforeWithdrawal },
        extraObjects: [],
        state: { ...state, lastReport: { ...report, outcome: 'applied', durationMs: elapsed() } },
      });
      if (applied !== undefined) {
        const aged = await processing.age(deps.store, now());
        Object.assign(report, {
          outcome: 'applied',
          unchangedList: true,
          plausible: true,
          durationMs: elapsed(),
          ...appliedCounts(applied, aged),
          created: 0,
          reactivated: 0,
        });
        await deps.store.putSourceState({ ...state, lastReport: { ...report } });
        log.info(
          { durationMs: report.durationMs, count: report.valid, refreshed: report.refreshed },
          'poll applied: the list is the same as the previous one',
        );
        return report;
      }
      // A value of the list expired since; only a full poll reactivates it.
      read = await read.parse();
    }
    if (read.kind === 'unchanged') read = await read.parse();
    const result = read;
    if (result.kind === 'unchanged') throw new Error('parsing the body gave no data');
    if (result.kind === 'not-modified') {
      report.outcome = 'not-modified';
      report.durationMs = elapsed();
      await deps.store.putSourceState({
        ...keep(previous, collectionId, source.id),
        lastReport: { ...report },
      });
      log.info({ durationMs: report.durationMs }, 'poll found the source unchanged');
      return report;
    }
    if (source.role === 'allow-list') {
      const collected = await collectStream(result);
      if (collected.kind !== 'data') throw new Error(`collecting the list gave ${collected.kind}`);
      Object.assign(report, collected.stats, { objectsRead: collected.objects.length });
      return await applyAllowList(deps, processing, source, collected, previous, report, {
        startedMicros,
        elapsed,
        log,
      });
    }
    const list = asStream(result);
    try {
      return await applyList(deps, collectionId, source, list, {
        processing,
        fingerprint,
        previous,
        report,
        startedMicros,
        elapsed,
        log,
        now,
      });
    } finally {
      await list.close();
    }
  } catch (error) {
    report.outcome = 'failed';
    report.durationMs = elapsed();
    report.error = (error as Error).message;
    log.warn(
      { err: error, durationMs: report.durationMs },
      'poll failed; collection left unchanged',
    );
    await deps.store.putSourceState({
      ...keep(previous, collectionId, source.id),
      lastReport: { ...report },
    });
    return report;
  }
}

async function* oneBatch(entries: SourceEntry[]): AsyncGenerator<SourceEntry[]> {
  yield entries;
}

/** A read list as batches of entries, whichever shape the kind returned it in. */
interface ListStream {
  batches: AsyncIterable<SourceEntry[]>;
  /** Returns the stats and objects, or throws when the body is unusable. Call it after `batches` ended. */
  end: () => { stats: ReadStats; objects: ObjectVersionInput[] };
  close: () => Promise<void>;
  etag?: string;
  lastModified?: string;
  cursor?: Record<string, unknown>;
  bodyDigest?: string;
  complete: boolean;
  authoritative: boolean;
  /** The batches may repeat a value; see the `stream` read result. */
  duplicatesKept: boolean;
}

/** Returns a `data` or `stream` read result as a stream of batches. */
function asStream(result: Extract<ReadResult, { kind: 'data' | 'stream' }>): ListStream {
  const { etag, lastModified, bodyDigest, complete } = result;
  if (result.kind === 'stream') {
    const { batches, end, close, duplicatesKept } = result;
    return {
      batches,
      end,
      close,
      etag,
      lastModified,
      bodyDigest,
      complete,
      authoritative: false,
      duplicatesKept,
    };
  }
  const { entries, stats, objects } = result;
  return {
    batches: oneBatch(entries),
    end: () => ({ stats, objects }),
    close: async () => {},
    etag,
    lastModified,
    cursor: result.cursor,
    bodyDigest,
    complete,
    authoritative: result.authoritative === true,
    duplicatesKept: false,
  };
}

/** Poll state that `pollSource` passes on to `applyList`. */
interface ListPoll {
  processing: CollectionProcessing;
  fingerprint: string;
  previous: SourceState | undefined;
  report: PollReport;
  startedMicros: number;
  elapsed: () => number;
  log: Logger;
  now: () => number;
}

/**
 * Applies a read blocklist: screens each batch as the store takes it, then,
 * once the list has ended, judges the poll's plausibility and hands the
 * store what depends on the whole list. The store applies all of it at once.
 */
async function applyList(
  deps: PollDeps,
  collectionId: string,
  source: PollSource,
  list: ListStream,
  poll: ListPoll,
): Promise<PollReport> {
  const { processing, previous, report, startedMicros, elapsed, log } = poll;

  // Guards and allow-list run before storing: refused and allowed values
  // never become sightings, and split networks are stored as their remainders.
  const screenCounts = emptyScreenCounts();
  // Indicators refer to the marking of each TLP that a value's attributes name.
  const attributeTlps = new Set<TlpLevel>();
  let listed = 0;
  async function* screened(): AsyncGenerator<SightingInput[]> {
    for await (const batch of list.batches) {
      const entries = processing.screen.filter<SourceEntry>(
        batch,
        screenCounts,
        (original, part) =>
          original.attributes === undefined ? part : { ...part, attributes: original.attributes },
      );
      listed += entries.length;
      yield entries.map((entry) => toSighting(collectionId, entry, attributeTlps));
    }
  }

  // `complete` sets these once the list has ended.
  let newState: SourceState | undefined;
  let plausible = true;
  const previousValid = previous?.lastValidCount;
  const complete = (counts: StreamedCounts) => {
    const { stats, objects } = list.end();
    // The stage removed the repeated values that the parse kept. Values
    // that screening dropped never reached it, so their repeats count as valid.
    if (list.duplicatesKept) countRepeats(stats, counts.listed - counts.distinct);
    Object.assign(report, stats, { objectsRead: objects.length });
    Object.assign(report, {
      allowListed: screenCounts.allowListed,
      split: screenCounts.split,
      refused: nonZeroRefused(screenCounts),
      screenExamples: screenCounts.examples,
    });

    // A complete poll whose valid count fell too far is held: it may be a
    // truncated or broken list, so it withdraws nothing. An authoritative
    // list (the analysts' own entries) is the truth even when it shrinks or empties.
    plausible =
      list.authoritative ||
      !list.complete ||
      previousValid === undefined ||
      stats.valid >= previousValid * (1 - processing.withdrawal.maxDrop);
    report.plausible = plausible;
    const withdraws = list.complete && plausible && (stats.valid > 0 || list.authoritative);

    const extraObjects = [...objects];
    if (listed > 0) {
      extraObjects.push(buildIdentity({ collectionId, sourceId: source.id, name: source.name }));
      extraObjects.push(toStoredVersion(tlpMarking(source.tlp).json));
      for (const tlp of attributeTlps) {
        if (tlp !== source.tlp) extraObjects.push(toStoredVersion(tlpMarking(tlp).json));
      }
    }

    const cursor = list.cursor ?? previous?.cursor;
    newState = {
      collectionId,
      sourceId: source.id,
      etag: plausible ? list.etag : previous?.etag,
      lastModified: plausible ? list.lastModified : previous?.lastModified,
      lastSuccessAt: startedMicros,
      lastValidCount: plausible ? stats.valid : previousValid,
      cursor:
        withdraws && list.bodyDigest !== undefined
          ? withUnchanged(cursor, poll.fingerprint, list.bodyDigest, startedMicros)
          : withUnchanged(cursor, undefined, undefined, startedMicros),
    };
    return {
      extraObjects,
      missing: withdraws
        ? {
            withdrawAfter: list.authoritative ? 1 : processing.withdrawal.missesBeforeWithdrawal,
          }
        : undefined,
      // Counts are known only once the poll is applied; the final report replaces this one below.
      state: { ...newState, lastReport: { ...report, outcome: 'applied', durationMs: elapsed() } },
    };
  };

  const buildVersion = (change: Parameters<typeof buildHubVersion>[0]) =>
    buildHubVersion(change, processing.versions);
  const applied = await deps.store.applyPoll({
    collectionId,
    sourceId: source.id,
    seenAt: startedMicros,
    sightings: screened(),
    buildIndicator: (sighting) =>
      buildVersion({
        kind: 'created',
        ...sighting,
        at: startedMicros,
        sightings: [
          {
            sourceId: source.id,
            indicatorId: sighting.indicatorId,
            firstSeen: startedMicros,
            lastSeen: startedMicros,
            missed: 0,
            creator: true,
            ...(sighting.attributes === undefined ? {} : { attributes: sighting.attributes }),
          },
        ],
      }),
    buildVersion,
    complete,
  });
  if (newState === undefined) throw new Error('the store applied the poll without completing it');
  const aged = await processing.age(deps.store, poll.now());

  Object.assign(report, {
    outcome: 'applied',
    durationMs: elapsed(),
    ...appliedCounts(applied, aged),
  });
  if (!plausible) {
    log.warn(
      {
        count: report.valid,
        previousCount: previousValid,
        maxDrop: processing.withdrawal.maxDrop,
      },
      'poll held as implausible: its valid count fell too far, so it withdraws nothing',
    );
  }
  await deps.store.putSourceState({ ...newState, lastReport: { ...report } });
  log.info(
    {
      durationMs: report.durationMs,
      count: report.valid,
      created: report.created,
      refreshed: report.refreshed,
      withdrawn: report.withdrawn,
      expired: report.expired,
      allowListed: report.allowListed,
      refused: report.refused,
      invalid: report.invalid,
      objectsAdded: report.objectsAdded,
    },
    'poll applied',
  );
  return report;
}

/** Returns the report counts of an applied poll, with those of the aging pass after it. */
function appliedCounts(applied: PollResultSummary, aged: ExpireSummary | undefined) {
  return {
    created: applied.created,
    refreshed: applied.refreshed,
    reactivated: applied.reactivated ?? 0,
    missed: applied.missed ?? 0,
    withdrawn: applied.withdrawn ?? 0,
    merged: (applied.merged ?? 0) + (aged?.merged ?? 0),
    expired: aged?.expired ?? 0,
    objectsAdded: applied.objects.added + (aged?.objects.added ?? 0),
    conflicts: applied.objects.conflicts.length,
  };
}

/** Builds the sighting of one screened entry and notes the TLP its attributes name. */
function toSighting(
  collectionId: string,
  entry: SourceEntry,
  attributeTlps: Set<TlpLevel>,
): SightingInput {
  const sighting: SightingInput = {
    valueType: entry.type,
    value: entry.value,
    indicatorId: indicatorId(collectionId, patternFor(entry.type, entry.value)),
  };
  if (entry.attributes !== undefined) {
    sighting.attributes = entry.attributes;
    if (entry.attributes.tlp !== undefined) attributeTlps.add(entry.attributes.tlp);
  }
  return sighting;
}

/** The previous state with only the report to be replaced: validators and cursor stay. */
function keep(
  previous: SourceState | undefined,
  collectionId: string,
  sourceId: string,
): SourceState {
  return { ...(previous ?? {}), collectionId, sourceId };
}

/**
 * Digest of what decides which sightings a list becomes besides its body:
 * the screen and the source's parse settings.
 */
function pollFingerprint(processing: CollectionProcessing, source: PollSource): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        processing.fingerprint,
        source.kind,
        source.valueType,
        source.extract?.source ?? null,
        source.extract?.flags ?? null,
        source.csv ?? null,
        source.json ?? null,
        source.misp ?? null,
      ]),
    )
    .digest('base64url');
}

/** The cursor key of the unchanged-list shortcut. */
const UNCHANGED_KEY = 'unchangedList';

interface UnchangedMark {
  /** Fingerprint and body digest of the last complete, plausible poll, as `fingerprint:digest`. */
  digest: string;
  /** Micros at which that poll started. */
  at: number;
}

/** Returns the body digest that a read may match, when the fingerprint is the same. */
function unchangedShortcut(
  previous: SourceState | undefined,
  fingerprint: string,
): { bodyDigest: string; at: number } | undefined {
  const mark = previous?.cursor?.[UNCHANGED_KEY] as UnchangedMark | undefined;
  if (mark === undefined || typeof mark.digest !== 'string' || typeof mark.at !== 'number') {
    return undefined;
  }
  const prefix = `${fingerprint}:`;
  if (!mark.digest.startsWith(prefix)) return undefined;
  return { bodyDigest: mark.digest.slice(prefix.length), at: mark.at };
}

/** Returns the cursor with the shortcut mark set, or removed when `bodyDigest` is undefined. */
function withUnchanged(
  cursor: Record<string, unknown> | undefined,
  fingerprint: string | undefined,
  bodyDigest: string | undefined,
  at: number,
): Record<string, unknown> | undefined {
  const { [UNCHANGED_KEY]: _old, ...rest } = cursor ?? {};
  void _old;
  if (fingerprint === undefined || bodyDigest === undefined) {
    return Object.keys(rest).length === 0 ? undefined : rest;
  }
  const mark: UnchangedMark = { digest: `${fingerprint}:${bodyDigest}`, at };
  return { ...rest, [UNCHANGED_KEY]: mark };
}

/**
 * Applies a poll of an allow-list source: its values replace the source's
 * allow entries in the collection's screen. A poll whose valid count fell
 * too far is held, as for blocklists, so a truncated list allows less
 * rather than nothing. No indicator is written.
 */
async function applyAllowList(
  deps: PollDeps,
  processing: CollectionProcessing,
  source: PollSource,
  result: {
    entries: SourceEntry[];
    stats: ReadStats;
    etag?: string;
    lastModified?: string;
    complete: boolean;
    cursor?: Record<string, unknown>;
  },
  previous: SourceState | undefined,
  report: PollReport,
  context: { startedMicros: number; elapsed: () => number; log: Logger },
): Promise<PollReport> {
  const previousValid = previous?.lastValidCount;
  const plausible =
    previousValid === undefined ||
    result.stats.valid >= previousValid * (1 - processing.withdrawal.maxDrop);
  const values = [...new Set(result.entries.map((entry) => entry.value))].sort();
  const kept = plausible ? values : storedAllowEntries(previous);
  Object.assign(report, {
    outcome: 'applied',
    plausible,
    allowEntries: kept.length,
    durationMs: context.elapsed(),
  });
  const state: SourceState = {
    collectionId: report.collectionId,
    sourceId: source.id,
    etag: plausible ? result.etag : previous?.etag,
    lastModified: plausible ? result.lastModified : previous?.lastModified,
    lastSuccessAt: context.startedMicros,
    lastValidCount: plausible ? result.stats.valid : previousValid,
    // The kind's own cursor (a version check, moved drop files) is kept, as for a blocklist.
    cursor: {
      ...(previous?.cursor ?? {}),
      ...(plausible ? (result.cursor ?? {}) : {}),
      [ALLOW_ENTRIES_KEY]: kept,
    },
    lastReport: { ...report },
  };
  await deps.store.putSourceState(state);
  processing.setSourceAllowList(source.id, kept);
  if (plausible) {
    context.log.info({ count: kept.length }, 'allow-list source applied');
  } else {
    context.log.warn(
      { count: result.stats.valid, previousCount: previousValid },
      'allow-list poll held as implausible: its valid count fell too far, so the previous entries stay',
    );
  }
  return report;
}
