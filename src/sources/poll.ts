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
import { SOURCE_KINDS, type ReadStats, type SourceSettings } from './kinds.js';

/** What a poll needs to know about its source; the collection config provides it. */
export interface PollSource extends SourceSettings {
  confidence: number;
  tlp: TlpLevel;
  indicatorTypes: readonly string[];
  labels: readonly string[];
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
  error?: string;
}

function defaultNowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * Polls one source into its collection. The store applies the result in one
 * step, so a failure at any point (fetch, parse, judgement, a crash) leaves
 * the collection as it was. A failed poll changes only the source's last
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

    const result = await kind.read({ source, previous, userAgent: deps.userAgent, logger: log });
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
    Object.assign(report, result.stats, { objectsRead: result.objects.length });

    const marking = tlpMarking(source.tlp);
    const creatorId = identityId(collectionId, source.id);
    const sightings: SightingInput[] = result.entries.map((entry) => ({
      valueType: entry.type,
      value: entry.value,
      indicatorId: indicatorId(collectionId, patternFor(entry.type, entry.value)),
    }));
    const extraObjects = [...result.objects];
    if (sightings.length > 0) {
      extraObjects.push(buildIdentity({ collectionId, sourceId: source.id, name: source.name }));
      extraObjects.push(toStoredVersion(marking.json));
    }

    const newState: SourceState = {
      collectionId,
      sourceId: source.id,
      etag: result.etag,
      lastModified: result.lastModified,
      lastSuccessAt: startedMicros,
      lastValidCount: result.stats.valid,
      cursor: result.cursor ?? previous?.cursor,
    };
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
      extraObjects,
      // Counts are known only once the poll is applied; the final report replaces this one below.
      state: { ...newState, lastReport: { ...report, outcome: 'applied', durationMs: elapsed() } },
    });

    Object.assign(report, {
      outcome: 'applied',
      durationMs: elapsed(),
      created: applied.created,
      refreshed: applied.refreshed,
      objectsAdded: applied.objects.added,
      conflicts: applied.objects.conflicts.length,
    });
    await deps.store.putSourceState({ ...newState, lastReport: { ...report } });
    log.info(
      {
        durationMs: report.durationMs,
        count: report.valid,
        created: report.created,
        refreshed: report.refreshed,
        invalid: report.invalid,
        objectsAdded: report.objectsAdded,
      },
      'poll applied',
    );
    return report;
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

/** The previous state with only the report to be replaced: validators and cursor stay. */
function keep(
  previous: SourceState | undefined,
  collectionId: string,
  sourceId: string,
): SourceState {
  return { ...(previous ?? {}), collectionId, sourceId };
}
