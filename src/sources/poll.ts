import type { Logger } from 'pino';
import type { ValueType } from '../processing/index.js';
import {
  buildIdentity,
  buildIndicator,
  identityId,
  indicatorId,
  patternFor,
  tlpMarking,
  toStoredVersion,
  type TlpLevel,
} from '../stix/index.js';
import type { SightingInput, SourceState, Store } from '../store/index.js';
import { fetchFeed } from './fetch.js';
import { judgeBody, parseTextList } from './text-list.js';

/** What a poll needs to know about its source; the collection config provides it. */
export interface PollSource {
  id: string;
  name: string;
  kind: 'text-list';
  url: string;
  valueType: ValueType | 'auto';
  extract?: RegExp;
  confidence: number;
  tlp: TlpLevel;
  indicatorTypes: readonly string[];
  labels: readonly string[];
  timeoutMs: number;
  maxBytes: number;
}

export interface PollDeps {
  store: Store;
  logger: Logger;
  userAgent: string;
  /** Current time in microseconds; tests may pin it. */
  nowMicros?: () => number;
}

export type PollOutcome = 'applied' | 'not-modified' | 'failed';

/** The run report of one poll, stored as the source's last report and logged. */
export interface PollReport {
  outcome: PollOutcome;
  collectionId: string;
  sourceId: string;
  startedAt: string;
  durationMs: number;
  bytes?: number;
  lines?: number;
  comments?: number;
  blank?: number;
  unmatched?: number;
  valid?: number;
  invalid?: number;
  duplicates?: number;
  invalidExamples?: { line: number; text: string; reason: string }[];
  created?: number;
  refreshed?: number;
  objectsAdded?: number;
  error?: string;
}

/** A poll whose body was fetched but judged unusable (an HTML page, mostly invalid lines, no entries). */
export class PollRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PollRejectedError';
  }
}

function defaultNowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * Polls one source into its collection. The store applies the result in one
 * step, so a failure at any point (fetch, parse, judgement, a crash) leaves
 * the collection as it was. A failed poll changes only the source's last
 * report; its ETag and Last-Modified stay, so the next poll fetches again.
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

  try {
    const fetched = await fetchFeed(source.url, {
      etag: previous?.etag,
      lastModified: previous?.lastModified,
      timeoutMs: source.timeoutMs,
      maxBytes: source.maxBytes,
      userAgent: deps.userAgent,
    });

    if (fetched.kind === 'not-modified') {
      report.outcome = 'not-modified';
      report.durationMs = Math.round(performance.now() - started);
      await deps.store.putSourceState({
        ...baseState(previous, collectionId, source.id),
        lastReport: { ...report },
      });
      log.info({ durationMs: report.durationMs }, 'poll found the source unchanged');
      return report;
    }

    const parsed = await parseTextList(fetched.body, {
      valueType: source.valueType,
      extract: source.extract,
      maxInvalidExamples: 5,
    });
    Object.assign(report, {
      bytes: fetched.bytes(),
      lines: parsed.stats.lines,
      comments: parsed.stats.comments,
      blank: parsed.stats.blank,
      unmatched: parsed.stats.unmatched,
      valid: parsed.stats.valid,
      invalid: parsed.stats.invalid,
      duplicates: parsed.stats.duplicates,
      invalidExamples: parsed.stats.invalidExamples,
    });

    const judgement = judgeBody(parsed.stats);
    if (!judgement.ok) {
      throw new PollRejectedError(`rejected the body of ${source.url}: ${judgement.reason}`);
    }

    const identity = buildIdentity({
      collectionId,
      sourceId: source.id,
      name: source.name,
    });
    const marking = tlpMarking(source.tlp);
    const creatorId = identityId(collectionId, source.id);

    const sightings: SightingInput[] = parsed.entries.map((entry) => ({
      valueType: entry.type,
      value: entry.value,
      indicatorId: indicatorId(collectionId, patternFor(entry.type, entry.value)),
    }));

    const applied = await deps.store.applyPoll({
      collectionId,
      sourceId: source.id,
      seenAt: startedMicros,
      sightings,
      buildIndicator: (sighting) =>
        buildIndicator({
          collectionId,
          identityId: creatorId,
          type: sighting.valueType as ValueType,
          value: sighting.value,
          confidence: source.confidence,
          tlpMarkingId: marking.id,
          indicatorTypes: [...source.indicatorTypes],
          labels: [...source.labels],
          createdMicros: startedMicros,
          validFromMicros: startedMicros,
        }),
      extraObjects: [identity, toStoredVersion(marking.json)],
      state: {
        collectionId,
        sourceId: source.id,
        etag: fetched.etag,
        lastModified: fetched.lastModified,
        lastSuccessAt: startedMicros,
        lastValidCount: parsed.stats.valid,
        lastReport: finish(report, 'applied', started, {
          created: 0,
          refreshed: 0,
          objectsAdded: 0,
        }),
      },
    });

    // The stored report was written before the counts were known; store the final one.
    finish(report, 'applied', started, {
      created: applied.created,
      refreshed: applied.refreshed,
      objectsAdded: applied.objects.added,
    });
    await deps.store.putSourceState({
      collectionId,
      sourceId: source.id,
      etag: fetched.etag,
      lastModified: fetched.lastModified,
      lastSuccessAt: startedMicros,
      lastValidCount: parsed.stats.valid,
      lastReport: { ...report },
    });
    log.info(
      {
        durationMs: report.durationMs,
        count: report.valid,
        created: report.created,
        refreshed: report.refreshed,
        invalid: report.invalid,
      },
      'poll applied',
    );
    return report;
  } catch (error) {
    finish(report, 'failed', started, { error: (error as Error).message });
    log.warn(
      { err: error, durationMs: report.durationMs, invalidExamples: report.invalidExamples },
      'poll failed; collection left unchanged',
    );
    await deps.store.putSourceState({
      ...baseState(previous, collectionId, source.id),
      lastReport: { ...report },
    });
    return report;
  }
}

function baseState(
  previous: SourceState | undefined,
  collectionId: string,
  sourceId: string,
): SourceState {
  return { ...(previous ?? {}), collectionId, sourceId };
}

function finish(
  report: PollReport,
  outcome: PollOutcome,
  started: number,
  fields: Partial<PollReport>,
): Record<string, unknown> {
  Object.assign(report, fields);
  report.outcome = outcome;
  report.durationMs = Math.round(performance.now() - started);
  return { ...report };
}
