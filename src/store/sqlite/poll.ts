import type Database from 'better-sqlite3';

import type {
  IndicatorEntry,
  ObjectVersionInput,
  PollResultInput,
  PollResultSummary,
  SourceState,
} from '../port.js';
import type { ObjectTable } from './objects.js';

const INDICATOR_BATCH = 1000;

type SourceStateRow = {
  etag: string | null;
  lastModified: string | null;
  lastSuccessAt: number | null;
  lastValidCount: number | null;
  lastReport: string | null;
  cursor: string | null;
};

type EntryRow = Omit<IndicatorEntry, 'sources'> & { sources: string };

/** Statements on `sightings` and `source_state`. Writers run inside a write transaction. */
export class PollTables {
  private readonly refresh: Database.Statement<[number, string, string, string, string, string]>;
  private readonly upsert: Database.Statement<
    [string, string, string, string, string, number, number]
  >;
  private readonly readState: Database.Statement<[string, string], SourceStateRow>;
  private readonly writeState: Database.Statement<
    [
      string,
      string,
      string | null,
      string | null,
      number | null,
      number | null,
      string | null,
      string | null,
    ]
  >;
  private readonly listAll: Database.Statement<[string], EntryRow>;
  private readonly listTypes: Database.Statement<[string, string], EntryRow>;

  constructor(
    db: Database.Database,
    private readonly objects: ObjectTable,
  ) {
    // Succeeds only for a value this source has reported before with the same
    // indicator id: the common case of a re-poll, one statement per value.
    this.refresh = db.prepare(
      `UPDATE sightings SET last_seen = max(last_seen, ?)
       WHERE collection_id = ? AND value_type = ? AND value = ? AND source_id = ? AND indicator_id = ?`,
    );
    this.upsert = db.prepare(
      `INSERT INTO sightings (collection_id, value_type, value, source_id, indicator_id, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (collection_id, value_type, value, source_id) DO UPDATE SET
         indicator_id = excluded.indicator_id,
         last_seen = max(last_seen, excluded.last_seen)`,
    );
    this.readState = db.prepare(
      `SELECT etag, last_modified AS lastModified, last_success_at AS lastSuccessAt,
         last_valid_count AS lastValidCount, last_report AS lastReport, cursor
       FROM source_state WHERE collection_id = ? AND source_id = ?`,
    );
    this.writeState = db.prepare(
      `INSERT OR REPLACE INTO source_state
         (collection_id, source_id, etag, last_modified, last_success_at, last_valid_count,
          last_report, cursor)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const listSql = (typeFilter: string) =>
      `SELECT value_type AS valueType, value, min(indicator_id) AS indicatorId,
         min(first_seen) AS firstSeen, max(last_seen) AS lastSeen,
         json_group_array(source_id) AS sources
       FROM sightings
       WHERE collection_id = ? ${typeFilter}
       GROUP BY value_type, value
       ORDER BY value_type, value`;
    this.listAll = db.prepare(listSql(''));
    this.listTypes = db.prepare(listSql('AND value_type IN (SELECT value FROM json_each(?))'));
  }

  /** Applies a poll; call inside a write transaction so that a throw rolls all of it back. */
  apply(input: PollResultInput): PollResultSummary {
    const { collectionId, sourceId, seenAt } = input;
    const summary: PollResultSummary = {
      created: 0,
      refreshed: 0,
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    // Values already counted in this poll, so that a value listed twice counts once.
    const counted = new Set<string>();
    // New indicators are stored in batches: one clock read and write per batch.
    let pending: ObjectVersionInput[] = [];

    for (const sighting of input.sightings) {
      const { valueType, value, indicatorId } = sighting;
      const key = `${valueType}\u0000${value}`;
      const refreshed =
        this.refresh.run(seenAt, collectionId, valueType, value, sourceId, indicatorId).changes ===
        1;

      if (!refreshed) {
        this.upsert.run(collectionId, valueType, value, sourceId, indicatorId, seenAt, seenAt);
      }
      if (counted.has(key)) continue;
      counted.add(key);

      // A sighting row of this source with the same indicator id is written
      // only together with that indicator, so the indicator exists.
      if (refreshed || this.objects.exists(collectionId, indicatorId)) {
        summary.refreshed++;
        continue;
      }

      pending.push(input.buildIndicator(sighting));
      summary.created++;
      if (pending.length >= INDICATOR_BATCH) {
        mergeInto(summary, this.objects.put(collectionId, pending));
        pending = [];
      }
    }

    mergeInto(summary, this.objects.put(collectionId, pending));
    mergeInto(summary, this.objects.put(collectionId, input.extraObjects));
    this.putState(input.state);
    return summary;
  }

  getState(collectionId: string, sourceId: string): SourceState | undefined {
    const row = this.readState.get(collectionId, sourceId);
    if (row === undefined) return undefined;

    const state: SourceState = { collectionId, sourceId };
    if (row.etag !== null) state.etag = row.etag;
    if (row.lastModified !== null) state.lastModified = row.lastModified;
    if (row.lastSuccessAt !== null) state.lastSuccessAt = row.lastSuccessAt;
    if (row.lastValidCount !== null) state.lastValidCount = row.lastValidCount;
    if (row.lastReport !== null) {
      state.lastReport = JSON.parse(row.lastReport) as Record<string, unknown>;
    }
    if (row.cursor !== null) state.cursor = JSON.parse(row.cursor) as Record<string, unknown>;
    return state;
  }

  putState(state: SourceState): void {
    this.writeState.run(
      state.collectionId,
      state.sourceId,
      state.etag ?? null,
      state.lastModified ?? null,
      state.lastSuccessAt ?? null,
      state.lastValidCount ?? null,
      state.lastReport === undefined ? null : JSON.stringify(state.lastReport),
      state.cursor === undefined ? null : JSON.stringify(state.cursor),
    );
  }

  listEntries(collectionId: string, valueTypes?: string[]): IndicatorEntry[] {
    const rows =
      valueTypes === undefined
        ? this.listAll.all(collectionId)
        : this.listTypes.all(collectionId, JSON.stringify(valueTypes));
    return rows.map((row) => ({
      ...row,
      sources: (JSON.parse(row.sources) as string[]).sort(),
    }));
  }
}

function mergeInto(summary: PollResultSummary, added: PollResultSummary['objects']): void {
  summary.objects.added += added.added;
  summary.objects.unchanged += added.unchanged;
  summary.objects.conflicts.push(...added.conflicts);
}
