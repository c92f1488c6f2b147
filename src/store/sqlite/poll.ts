import type Database from 'better-sqlite3';

import type {
  ExpireInput,
  ExpireSummary,
  IndicatorChange,
  IndicatorEntry,
  ObjectVersionInput,
  PollResultInput,
  PollResultSummary,
  RemoveSightingInput,
  RemoveSightingResult,
  Revocation,
  SightingAttributes,
  SightingInput,
  SightingRecord,
  SourceState,
  WithdrawalReason,
} from '../port.js';
import { decodeAttributes, mergeAttributes } from '../attributes.js';
import type { ObjectTable } from './objects.js';
import { PollStagePool, type PollStage, type StagedValue } from './poll-stage.js';

/**
 * Versions stored per batch. Small, so that a batch is garbage before V8's
 * young-generation collections promote it to the old generation.
 * NOTE: measured once each with scripts/bench/ingest.mjs on 2 vCPUs, a fresh
 * poll of 1,000,000 values peaked at about 1.3 GiB resident with batches of
 * 2,000 and 0.9 GiB with 500; repeated runs vary by a few hundred MiB.
 */
const INDICATOR_BATCH = 500;

type SourceStateRow = {
  etag: string | null;
  lastModified: string | null;
  lastSuccessAt: number | null;
  lastValidCount: number | null;
  lastReport: string | null;
  cursor: string | null;
};

type EntryRow = Omit<IndicatorEntry, 'sources' | 'attributes'> & {
  sources: string;
  /** JSON array of `[sourceId, lastSeen, attributes]` of the active sightings with attributes. */
  attributes: string;
};

type SightingRow = {
  sourceId: string;
  indicatorId: string;
  firstSeen: number;
  lastSeen: number;
  missed: number;
  creator: number;
  withdrawnAt: number | null;
  withdrawalReason: string | null;
  attributes: string | null;
};

type CandidateRow = { valueType: string; value: string; indicatorId: string; missed: number };

/** What a pass writes besides sightings: indicator versions, flushed in batches. */
class VersionBatch {
  private pending: ObjectVersionInput[] = [];
  readonly objects: PollResultSummary['objects'] = { added: 0, unchanged: 0, conflicts: [] };

  constructor(
    private readonly table: ObjectTable,
    private readonly collectionId: string,
  ) {}

  add(version: ObjectVersionInput): void {
    this.pending.push(version);
    if (this.pending.length >= INDICATOR_BATCH) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    mergeObjects(this.objects, this.table.put(this.collectionId, this.pending));
    this.pending = [];
  }

  /** Stores versions of objects that have none in the collection; see `ObjectTable.putFirstVersions`. */
  putFirst(versions: readonly ObjectVersionInput[]): void {
    this.flush();
    mergeObjects(this.objects, this.table.putFirstVersions(this.collectionId, versions));
  }
}

/** Statements on `sightings` and `source_state`. Writers run inside a write transaction. */
export class PollTables {
  /** Staging tables, one pair per poll in progress on the connection. */
  readonly stages: PollStagePool;
  private readonly upsert: Database.Statement<
    [string, string, string, string, string, number, number, string | null]
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
  private readonly readSighting: Database.Statement<
    [string, string, string, string],
    { withdrawnAt: number | null; attributes: string | null }
  >;
  private readonly countActive: Database.Statement<[string, string, string], { n: number }>;
  private readonly readSightings: Database.Statement<[string, string, string], SightingRow>;
  private readonly versionRange: Database.Statement<
    [string, string],
    { first: string | null; last: string | null }
  >;
  private readonly missingCandidates: Database.Statement<[string, string, number], CandidateRow>;
  private readonly agedFirstSeen: Database.Statement<[string, string, number], CandidateRow>;
  private readonly agedLastSeen: Database.Statement<[string, string, number], CandidateRow>;
  private readonly countMiss: Database.Statement<[string, string, string, string]>;
  private readonly withdraw: Database.Statement<[number, string, string, string, string, string]>;
  private readonly withdrawnAfter: Database.Statement<[string, string, number], { one: number }>;
  private readonly refreshListed: Database.Statement<[number, string, string]>;
  private readonly currentIds: Database.Statement<
    [string],
    { valueType: string; value: string; indicatorId: string }
  >;
  private readonly markRemoved: Database.Statement<[number, string, string, string, string]>;
  private readonly moveValue: Database.Statement<[string, string, string, string]>;
  private readonly insertRevocation: Database.Statement<
    [string, string, string, string, number, string]
  >;
  private readonly readRevocations: Database.Statement<[string, string, string], Revocation>;

  constructor(
    db: Database.Database,
    private readonly objects: ObjectTable,
  ) {
    this.stages = new PollStagePool(db);
    // A withdrawn sighting that comes back starts a new life: first_seen is
    // reset, so first-seen aging counts from its return.
    this.upsert = db.prepare(
      `INSERT INTO sightings (collection_id, value_type, value, source_id, indicator_id, first_seen, last_seen, attributes, creator)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
       ON CONFLICT (collection_id, value_type, value, source_id) DO UPDATE SET
         indicator_id = excluded.indicator_id,
         first_seen = CASE WHEN withdrawn_at IS NULL THEN first_seen ELSE excluded.first_seen END,
         last_seen = max(last_seen, excluded.last_seen),
         missed = 0,
         withdrawn_at = NULL,
         withdrawal_reason = NULL,
         attributes = excluded.attributes`,
    );
    this.readSighting = db.prepare(
      `SELECT withdrawn_at AS withdrawnAt, attributes FROM sightings
       WHERE collection_id = ? AND value_type = ? AND value = ? AND source_id = ?`,
    );
    this.countActive = db.prepare(
      `SELECT count(*) AS n FROM sightings
       WHERE collection_id = ? AND value_type = ? AND value = ? AND withdrawn_at IS NULL`,
    );
    this.readSightings = db.prepare(
      `SELECT source_id AS sourceId, indicator_id AS indicatorId, first_seen AS firstSeen,
         last_seen AS lastSeen, missed, creator, withdrawn_at AS withdrawnAt,
         withdrawal_reason AS withdrawalReason, attributes
       FROM sightings WHERE collection_id = ? AND value_type = ? AND value = ?
       ORDER BY source_id`,
    );
    this.versionRange = db.prepare(
      'SELECT min(version) AS first, max(version) AS last FROM objects WHERE collection_id = ? AND id = ?',
    );
    const candidatesSql = (condition: string) =>
      `SELECT value_type AS valueType, value, indicator_id AS indicatorId, missed
       FROM sightings
       WHERE collection_id = ? AND source_id = ? AND withdrawn_at IS NULL AND ${condition}`;
    this.missingCandidates = db.prepare(candidatesSql('last_seen < ?'));
    this.agedFirstSeen = db.prepare(candidatesSql('first_seen <= ?'));
    this.agedLastSeen = db.prepare(candidatesSql('last_seen <= ?'));
    this.countMiss = db.prepare(
      `UPDATE sightings SET missed = missed + 1
       WHERE collection_id = ? AND value_type = ? AND value = ? AND source_id = ?`,
    );
    this.withdraw = db.prepare(
      `UPDATE sightings SET withdrawn_at = ?, withdrawal_reason = ?
       WHERE collection_id = ? AND value_type = ? AND value = ? AND source_id = ?`,
    );
    this.withdrawnAfter = db.prepare(
      `SELECT 1 AS one FROM sightings
       WHERE collection_id = ? AND source_id = ? AND withdrawn_at > ? LIMIT 1`,
    );
    // Active sightings without a miss are those the previous complete poll listed.
    this.refreshListed = db.prepare(
      `UPDATE sightings SET last_seen = max(last_seen, ?)
       WHERE collection_id = ? AND source_id = ? AND withdrawn_at IS NULL AND missed = 0`,
    );
    // A revoked id whose successor is not revoked itself: the value's current id.
    this.currentIds = db.prepare(
      `SELECT r.value_type AS valueType, r.value, r.successor_id AS indicatorId
       FROM revocations r
       WHERE r.collection_id = ? AND NOT EXISTS (
         SELECT 1 FROM revocations n
         WHERE n.collection_id = r.collection_id AND n.indicator_id = r.successor_id)`,
    );
    // A sighting withdrawn before keeps the moment it stopped counting and
    // takes the reason, so a revocation does not move the end of validity.
    this.markRemoved = db.prepare(
      `UPDATE sightings SET withdrawn_at = coalesce(withdrawn_at, ?), withdrawal_reason = 'removed'
       WHERE collection_id = ? AND value_type = ? AND value = ? AND source_id = ?`,
    );
    // The successor has no version yet, so the source that lists the value
    // again creates it and becomes its creator.
    this.moveValue = db.prepare(
      `UPDATE sightings SET indicator_id = ?, creator = 0
       WHERE collection_id = ? AND value_type = ? AND value = ?`,
    );
    this.insertRevocation = db.prepare(
      `INSERT INTO revocations
         (collection_id, indicator_id, value_type, value, revoked_at, successor_id)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.readRevocations = db.prepare(
      `SELECT indicator_id AS indicatorId, revoked_at AS revokedAt, successor_id AS successorId
       FROM revocations WHERE collection_id = ? AND value_type = ? AND value = ?
       ORDER BY revoked_at, indicator_id`,
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
         json_group_array(source_id) AS sources,
         json_group_array(json_array(source_id, last_seen, json(attributes)))
           FILTER (WHERE attributes IS NOT NULL) AS attributes
       FROM sightings
       WHERE collection_id = ? AND withdrawn_at IS NULL ${typeFilter}
       GROUP BY value_type, value
       ORDER BY value_type, value`;
    this.listAll = db.prepare(listSql(''));
    this.listTypes = db.prepare(listSql('AND value_type IN (SELECT value FROM json_each(?))'));
  }

  /**
   * Applies a poll; call inside a write transaction so that a throw rolls all
   * of it back. The listed values are staged first, then merged by `merge`.
   */
  apply(input: PollResultInput): PollResultSummary {
    const stage = this.stages.acquire();
    try {
      stage.load(input.sightings);
      return this.merge(input, stage);
    } finally {
      this.stages.release(stage);
    }
  }

  /**
   * Merges the values staged in `stage` into the collection; call inside a
   * write transaction. The values are merged in three groups. Refreshed
   * sightings and new values take set-based statements, and the versions of
   * new values are built page by page. The rest (a source's returning,
   * changed or first sighting of a known value) are applied one by one. `input.sightings` is not
   * read: the stage holds the listed values.
   */
  merge(input: Omit<PollResultInput, 'sightings'>, stage: PollStage): PollResultSummary {
    const { collectionId, sourceId, seenAt, buildVersion } = input;
    const summary: PollResultSummary = {
      created: 0,
      refreshed: 0,
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    // The life-cycle counts exist only for callers that use the life cycle.
    if (buildVersion !== undefined || input.missing !== undefined) {
      Object.assign(summary, { reactivated: 0, missed: 0, withdrawn: 0, merged: 0 });
    }
    // New indicator versions are stored in batches: one clock read and write per batch.
    const batch = new VersionBatch(this.objects, collectionId);

    // Whatever id the caller gave, a revoked value comes back under its successor.
    const current = this.currentIds.all(collectionId);
    if (current.length > 0) stage.redirect(current);
    // The common case of a re-poll: active sightings of this source, one statement.
    summary.refreshed += stage.refresh(collectionId, sourceId, seenAt);
    summary.created += stage.insertNew(collectionId, sourceId, seenAt);
    // The stage found no version of these indicator ids in this transaction.
    for (const page of stage.newValues()) {
      const first: ObjectVersionInput[] = [];
      for (const staged of page) {
        const version = this.buildCreated(input, staged);
        if (version.id === staged.indicatorId) first.push(version);
        else batch.add(version);
      }
      batch.putFirst(first);
    }
    for (const page of stage.undecided()) {
      for (const staged of page) this.applyKnown(input, staged, summary, batch);
    }
    batch.flush();
    stage.clear();

    if (input.missing !== undefined) {
      const threshold = Math.max(1, input.missing.withdrawAfter);
      // Read all first: better-sqlite3 allows no write while a read is open.
      const candidates = this.missingCandidates.all(collectionId, sourceId, seenAt);
      for (const candidate of candidates) {
        const { valueType, value } = candidate;
        this.countMiss.run(collectionId, valueType, value, sourceId);
        if (candidate.missed + 1 < threshold) {
          summary.missed = (summary.missed ?? 0) + 1;
          continue;
        }
        const outcome = this.withdrawSighting(
          candidate,
          collectionId,
          sourceId,
          seenAt,
          'missing',
          batch,
          buildVersion,
        );
        if (outcome === 'merged') summary.merged = (summary.merged ?? 0) + 1;
        else summary.withdrawn = (summary.withdrawn ?? 0) + 1;
      }
      batch.flush();
    }

    mergeObjects(summary.objects, batch.objects);
    mergeObjects(summary.objects, this.objects.put(collectionId, input.extraObjects));
    this.putState(input.state);
    return summary;
  }

  /** Builds the first version of a new value's indicator; its only sighting is the one just written. */
  private buildCreated(
    input: Omit<PollResultInput, 'sightings'>,
    staged: StagedValue,
  ): ObjectVersionInput {
    const { valueType, value, indicatorId } = staged;
    const attributes = decodeAttributes(staged.attributes);
    const sighting: SightingInput = { valueType, value, indicatorId };
    if (attributes !== undefined) sighting.attributes = attributes;
    if (input.buildVersion === undefined) return input.buildIndicator(sighting);

    const record: SightingRecord = {
      sourceId: input.sourceId,
      indicatorId,
      firstSeen: input.seenAt,
      lastSeen: input.seenAt,
      missed: 0,
      creator: true,
    };
    if (attributes !== undefined) record.attributes = attributes;
    return input.buildVersion({
      kind: 'created',
      valueType,
      value,
      indicatorId,
      at: input.seenAt,
      sightings: [record],
    });
  }

  /**
   * Applies the listing of a value that has an indicator but no active
   * sighting of this source with the same indicator id and attributes.
   */
  private applyKnown(
    input: Omit<PollResultInput, 'sightings'>,
    staged: StagedValue,
    summary: PollResultSummary,
    batch: VersionBatch,
  ): void {
    const { collectionId, sourceId, seenAt, buildVersion } = input;
    const { valueType, value, indicatorId, attributes } = staged;
    const own = this.readSighting.get(collectionId, valueType, value, sourceId);
    const othersActive = this.countActive.get(collectionId, valueType, value)?.n ?? 0;
    this.upsert.run(
      collectionId,
      valueType,
      value,
      sourceId,
      indicatorId,
      seenAt,
      seenAt,
      attributes,
    );
    const ownWasActive = own !== undefined && own.withdrawnAt === null;
    if (ownWasActive || buildVersion === undefined) {
      summary.refreshed++;
      // The sighting's attributes are part of the indicator, so a change needs a version.
      if (ownWasActive && buildVersion !== undefined && own.attributes !== attributes) {
        summary.merged = (summary.merged ?? 0) + 1;
        batch.add(buildVersion(this.change('merged', collectionId, staged, seenAt)));
      }
      return;
    }
    if (othersActive > 0) {
      summary.refreshed++;
      summary.merged = (summary.merged ?? 0) + 1;
      batch.add(buildVersion(this.change('merged', collectionId, staged, seenAt)));
    } else {
      summary.reactivated = (summary.reactivated ?? 0) + 1;
      batch.add(buildVersion(this.change('reactivated', collectionId, staged, seenAt)));
    }
  }

  /** See `Store.applyUnchangedPoll`; call inside a write transaction. */
  applyUnchanged(input: PollResultInput & { since: number }): PollResultSummary | undefined {
    const { collectionId, sourceId, seenAt } = input;
    if (this.withdrawnAfter.get(collectionId, sourceId, input.since) !== undefined)
      return undefined;
    const refreshed = this.refreshListed.run(seenAt, collectionId, sourceId).changes;
    const summary = this.apply({ ...input, sightings: [] });
    summary.refreshed = refreshed;
    return summary;
  }

  /** Expires sightings by the aging rules; call inside a write transaction. */
  expire(input: ExpireInput): ExpireSummary {
    const { collectionId, now } = input;
    const summary: ExpireSummary = {
      sightings: 0,
      expired: 0,
      merged: 0,
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    const batch = new VersionBatch(this.objects, collectionId);
    for (const rule of input.rules) {
      const cutoff = now - rule.maxAgeMicros;
      const statement = rule.basis === 'first-seen' ? this.agedFirstSeen : this.agedLastSeen;
      const types = rule.valueTypes === undefined ? undefined : new Set(rule.valueTypes);
      for (const candidate of statement.all(collectionId, rule.sourceId, cutoff)) {
        if (types !== undefined && !types.has(candidate.valueType)) continue;
        summary.sightings++;
        const outcome = this.withdrawSighting(
          candidate,
          collectionId,
          rule.sourceId,
          now,
          'expired',
          batch,
          input.buildVersion,
        );
        if (outcome === 'merged') summary.merged++;
        else summary.expired++;
      }
    }
    batch.flush();
    mergeObjects(summary.objects, batch.objects);
    return summary;
  }

  /** See `Store.removeSighting`; call inside a write transaction. */
  remove(input: RemoveSightingInput): RemoveSightingResult {
    const { collectionId, sourceId, valueType, value, at } = input;
    const result: RemoveSightingResult = {
      outcome: 'unknown',
      objects: { added: 0, unchanged: 0, conflicts: [] },
    };
    const own = this.listSightings(collectionId, valueType, value).find(
      (sighting) => sighting.sourceId === sourceId,
    );
    if (own === undefined) return result;

    this.markRemoved.run(at, collectionId, valueType, value, sourceId);
    const batch = new VersionBatch(this.objects, collectionId);
    const ref = { valueType, value, indicatorId: own.indicatorId };
    result.outcome = 'unchanged';
    if ((this.countActive.get(collectionId, valueType, value)?.n ?? 0) > 0) {
      if (own.withdrawnAt === undefined) {
        result.outcome = 'merged';
        batch.add(input.buildVersion(this.change('merged', collectionId, ref, at)));
      }
    } else {
      const change = this.change('revoked', collectionId, ref, at);
      // An id without a version (its objects deleted through TAXII, or the
      // successor of a revocation that no source listed since) is not revoked.
      if (change.lastVersion !== undefined) {
        result.outcome = 'revoked';
        batch.add(input.buildVersion(change));
        const successorId = input.successorId(own.indicatorId);
        this.moveValue.run(successorId, collectionId, valueType, value);
        this.insertRevocation.run(collectionId, own.indicatorId, valueType, value, at, successorId);
        result.revocation = { indicatorId: own.indicatorId, revokedAt: at, successorId };
      }
    }
    batch.flush();
    mergeObjects(result.objects, batch.objects);
    return result;
  }

  listRevocations(collectionId: string, valueType: string, value: string): Revocation[] {
    return this.readRevocations.all(collectionId, valueType, value);
  }

  /** Returns every sighting of one value, active or not, by source id. */
  listSightings(collectionId: string, valueType: string, value: string): SightingRecord[] {
    return this.readSightings.all(collectionId, valueType, value).map(toSightingRecord);
  }

  /**
   * Withdraws one sighting and, when a builder is given, queues the version
   * this causes: `merged` while another sighting keeps the value active,
   * else `withdrawn` or `expired`. Returns which of the two happened.
   */
  private withdrawSighting(
    candidate: CandidateRow,
    collectionId: string,
    sourceId: string,
    at: number,
    reason: WithdrawalReason,
    batch: VersionBatch,
    buildVersion: ((change: IndicatorChange) => ObjectVersionInput) | undefined,
  ): 'merged' | 'gone' {
    const { valueType, value, indicatorId } = candidate;
    this.withdraw.run(at, reason, collectionId, valueType, value, sourceId);
    const stillActive = (this.countActive.get(collectionId, valueType, value)?.n ?? 0) > 0;
    if (buildVersion !== undefined) {
      const kind = stillActive ? 'merged' : reason === 'missing' ? 'withdrawn' : 'expired';
      const sighting = { valueType, value, indicatorId };
      batch.add(buildVersion(this.change(kind, collectionId, sighting, at)));
    }
    return stillActive ? 'merged' : 'gone';
  }

  private change(
    kind: IndicatorChange['kind'],
    collectionId: string,
    sighting: { valueType: string; value: string; indicatorId: string },
    at: number,
  ): IndicatorChange {
    const change: IndicatorChange = {
      kind,
      valueType: sighting.valueType,
      value: sighting.value,
      indicatorId: sighting.indicatorId,
      at,
      sightings: this.listSightings(collectionId, sighting.valueType, sighting.value),
    };
    const range = this.versionRange.get(collectionId, sighting.indicatorId);
    if (range?.first) change.firstVersion = range.first;
    if (range?.last) change.lastVersion = range.last;
    return change;
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
    return rows.map((row) => {
      const entry: IndicatorEntry = {
        valueType: row.valueType,
        value: row.value,
        indicatorId: row.indicatorId,
        firstSeen: row.firstSeen,
        lastSeen: row.lastSeen,
        sources: (JSON.parse(row.sources) as string[]).sort(),
      };
      if (row.attributes !== '[]') {
        const sightings = (
          JSON.parse(row.attributes) as [string, number, SightingAttributes][]
        ).map(([sourceId, lastSeen, attributes]) => ({ sourceId, lastSeen, attributes }));
        const merged = mergeAttributes(sightings);
        if (merged !== undefined) entry.attributes = merged;
      }
      return entry;
    });
  }
}

function mergeObjects(
  into: PollResultSummary['objects'],
  added: PollResultSummary['objects'],
): void {
  into.added += added.added;
  into.unchanged += added.unchanged;
  into.conflicts.push(...added.conflicts);
}

function toSightingRecord(row: SightingRow): SightingRecord {
  const record: SightingRecord = {
    sourceId: row.sourceId,
    indicatorId: row.indicatorId,
    firstSeen: row.firstSeen,
    lastSeen: row.lastSeen,
    missed: row.missed,
    creator: row.creator === 1,
  };
  if (row.withdrawnAt !== null) record.withdrawnAt = row.withdrawnAt;
  if (row.withdrawalReason !== null) {
    record.withdrawalReason = row.withdrawalReason as WithdrawalReason;
  }
  const attributes = decodeAttributes(row.attributes);
  if (attributes !== undefined) record.attributes = attributes;
  return record;
}
