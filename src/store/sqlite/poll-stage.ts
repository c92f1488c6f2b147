import type Database from 'better-sqlite3';

import { encodeAttributes } from '../attributes.js';
import type { SightingInput } from '../port.js';

/** Page cache of the temp database in KiB; by estimate about 200,000 staged values of 150 bytes. */
const TEMP_CACHE_KIB = 32 * 1024;

/** Rows read per page, so that a poll of millions of values is never read into memory at once. */
const PAGE_SIZE = 500;

/** A staged value with its attributes as stored (`encodeAttributes` JSON text or null). */
export interface StagedValue {
  valueType: string;
  value: string;
  indicatorId: string;
  attributes: string | null;
}

/** Named parameters of the merge statements. */
interface PollKey {
  collection: string;
  source: string;
}

/**
 * Decisions of the merge about a staged value:
 * - `REFRESH`: an active sighting of the source with the same indicator id
 *   and attributes, which only moves `last_seen`;
 * - `UNDECIDED`: every other value. Those whose indicator is copied to the
 *   new-values table are new. The rest are known to the collection, but the
 *   source's own sighting is missing, withdrawn, or has another indicator
 *   id or other attributes, so they are applied value by value.
 * New values get no status of their own, because marking them rewrote
 * every row of a fresh poll's stage.
 */
const UNDECIDED = 0;
const REFRESH = 1;

/**
 * The staging tables of a poll. A poll first writes the values it lists,
 * deduplicated, into `poll_stage_<n>`. The merge then decides and applies
 * most values with set-based statements instead of one statement each. Both
 * are TEMP tables, which belong to the connection and live in the temp
 * database (a temp file, never the data file). Each poll that runs at the
 * same time on a connection has its own pair (see `PollStagePool`), and
 * the pair is emptied before and after the poll, so an interrupted poll
 * leaves nothing behind. `add` writes only the temp database and may run
 * outside the poll's write transaction. Every other method must run inside it.
 */
export class PollStage {
  private readonly clearStage: Database.Statement<[]>;
  private readonly clearNew: Database.Statement<[]>;
  private readonly countStaged: Database.Statement<[], { n: number }>;
  private readonly insert: Database.Statement<[string, string, string, string | null]>;
  private readonly setIndicator: Database.Statement<[string, string, string]>;
  private readonly markRefresh: Database.Statement<[PollKey]>;
  private readonly refreshMarked: Database.Statement<[PollKey & { seenAt: number }]>;
  private readonly insertCreators: Database.Statement<[PollKey & { seenAt: number }]>;
  private readonly copyNew: Database.Statement<[{ collection: string }]>;
  private readonly newPage: Database.Statement<[string, number], StagedValue>;
  private readonly undecidedPage: Database.Statement<[string, string, number], StagedValue>;

  constructor(db: Database.Database, index: number) {
    const stage = `poll_stage_${index}`;
    const fresh = `poll_new_${index}`;
    // The temp database gets a bounded page cache of its own, so that staging
    // a large poll mostly stays in memory without growing with the poll.
    db.pragma(`temp.cache_size = -${TEMP_CACHE_KIB}`);

    // WITHOUT ROWID with the value as key: a value listed twice is one row,
    // and the first listing gives its indicator id and attributes. Feeds are
    // often sorted, and then rows arrive in key order.
    db.exec(`
      CREATE TEMP TABLE IF NOT EXISTS ${stage} (
        value_type TEXT NOT NULL,
        value TEXT NOT NULL,
        indicator_id TEXT NOT NULL,
        attributes TEXT,
        status INTEGER NOT NULL DEFAULT ${UNDECIDED},
        PRIMARY KEY (value_type, value)
      ) WITHOUT ROWID;
      -- The new values by indicator id: their versions are written in id
      -- order, so the id indexes of objects grow at their end.
      CREATE TEMP TABLE IF NOT EXISTS ${fresh} (
        indicator_id TEXT NOT NULL PRIMARY KEY,
        value_type TEXT NOT NULL,
        value TEXT NOT NULL,
        attributes TEXT
      ) WITHOUT ROWID;
    `);

    this.clearStage = db.prepare(`DELETE FROM temp.${stage}`);
    this.clearNew = db.prepare(`DELETE FROM temp.${fresh}`);
    this.insert = db.prepare(
      `INSERT INTO temp.${stage} (value_type, value, indicator_id, attributes)
       VALUES (?, ?, ?, ?)
       ON CONFLICT (value_type, value) DO NOTHING`,
    );
    this.countStaged = db.prepare(`SELECT count(*) AS n FROM temp.${stage}`);
    this.setIndicator = db.prepare(
      `UPDATE temp.${stage} SET indicator_id = ? WHERE value_type = ? AND value = ?`,
    );

    this.markRefresh = db.prepare(
      `UPDATE temp.${stage} SET status = ${REFRESH}
       WHERE EXISTS (
         SELECT 1 FROM main.sightings AS s
         WHERE s.collection_id = @collection AND s.value_type = ${stage}.value_type
           AND s.value = ${stage}.value AND s.source_id = @source
           AND s.indicator_id = ${stage}.indicator_id AND s.withdrawn_at IS NULL
           AND s.attributes IS ${stage}.attributes)`,
    );
    this.refreshMarked = db.prepare(
      // The query plan seeks the primary key once per staged row; the same
      // update written with UPDATE FROM scanned every sighting of the collection.
      `UPDATE main.sightings SET last_seen = max(last_seen, @seenAt), missed = 0
       WHERE (collection_id, value_type, value, source_id) IN (
         SELECT @collection, value_type, value, @source
         FROM temp.${stage} WHERE status = ${REFRESH})`,
    );

    // A sighting row is written only together with its indicator, so no
    // indicator means that no source has listed the value before.
    this.copyNew = db.prepare(
      `INSERT INTO temp.${fresh} (indicator_id, value_type, value, attributes)
       SELECT indicator_id, value_type, value, attributes
       FROM temp.${stage}
       WHERE status = ${UNDECIDED} AND NOT EXISTS (
         SELECT 1 FROM main.objects AS o
         WHERE o.collection_id = @collection AND o.id = ${stage}.indicator_id)
       ORDER BY indicator_id
       ON CONFLICT (indicator_id) DO NOTHING`,
    );
    const isNew = `EXISTS (SELECT 1 FROM temp.${fresh} AS n WHERE n.indicator_id = ${stage}.indicator_id)`;
    // In key order, as the stage is. A sighting may remain after TAXII
    // deleted its indicator, so this upserts as the per-value path does.
    this.insertCreators = db.prepare(
      `INSERT INTO main.sightings (collection_id, value_type, value, source_id, indicator_id,
         first_seen, last_seen, attributes, creator)
       SELECT @collection, value_type, value, @source, indicator_id, @seenAt, @seenAt, attributes, 1
       FROM temp.${stage} WHERE status = ${UNDECIDED} AND ${isNew}
       ORDER BY value_type, value
       ON CONFLICT (collection_id, value_type, value, source_id) DO UPDATE SET
         indicator_id = excluded.indicator_id,
         first_seen = CASE WHEN withdrawn_at IS NULL THEN first_seen ELSE excluded.first_seen END,
         last_seen = max(last_seen, excluded.last_seen),
         missed = 0,
         withdrawn_at = NULL,
         withdrawal_reason = NULL,
         attributes = excluded.attributes`,
    );

    const columns = 'value_type AS valueType, value, indicator_id AS indicatorId, attributes';
    this.newPage = db.prepare(
      `SELECT ${columns} FROM temp.${fresh}
       WHERE indicator_id > ? ORDER BY indicator_id LIMIT ?`,
    );
    this.undecidedPage = db.prepare(
      `SELECT ${columns} FROM temp.${stage}
       WHERE status = ${UNDECIDED} AND NOT ${isNew} AND (value_type, value) > (?, ?)
       ORDER BY value_type, value LIMIT ?`,
    );
  }

  /** Empties the staging tables and stages `sightings`. */
  load(sightings: readonly SightingInput[]): void {
    this.clear();
    this.add(sightings);
  }

  /** Stages more sightings. A value staged before keeps its first indicator id and attributes. */
  add(sightings: readonly SightingInput[]): void {
    for (const sighting of sightings) {
      this.insert.run(
        sighting.valueType,
        sighting.value,
        sighting.indicatorId,
        encodeAttributes(sighting.attributes),
      );
    }
  }

  /**
   * Moves staged values to the ids that replaced their revoked indicators,
   * one seek each; values not staged are skipped.
   */
  redirect(current: readonly { valueType: string; value: string; indicatorId: string }[]): void {
    for (const { valueType, value, indicatorId } of current) {
      this.setIndicator.run(indicatorId, valueType, value);
    }
  }

  /** Returns the number of distinct values staged. */
  count(): number {
    return this.countStaged.get()?.n ?? 0;
  }

  /**
   * Moves `last_seen` of the source's active sightings that the poll lists
   * with the same indicator id and attributes; returns how many.
   */
  refresh(collectionId: string, sourceId: string, seenAt: number): number {
    const key = { collection: collectionId, source: sourceId };
    this.markRefresh.run(key);
    return this.refreshMarked.run({ ...key, seenAt }).changes;
  }

  /**
   * Writes the creator sightings of the staged values that have no indicator
   * yet, and prepares them for `newValues`; returns how many there are.
   */
  insertNew(collectionId: string, sourceId: string, seenAt: number): number {
    if (this.copyNew.run({ collection: collectionId }).changes === 0) return 0;
    return this.insertCreators.run({ collection: collectionId, source: sourceId, seenAt }).changes;
  }

  /** Yields the values of `insertNew` in pages, ordered by indicator id. */
  *newValues(): Generator<StagedValue[]> {
    let after = '';
    for (;;) {
      // Each page is read whole before the caller writes: better-sqlite3
      // allows no write while a read is open.
      const page = this.newPage.all(after, PAGE_SIZE);
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1]!.indicatorId;
    }
  }

  /** Yields, in pages ordered by value, the staged values that neither `refresh` nor `insertNew` took. */
  *undecided(): Generator<StagedValue[]> {
    let afterType = '';
    let afterValue = '';
    for (;;) {
      const page = this.undecidedPage.all(afterType, afterValue, PAGE_SIZE);
      if (page.length === 0) return;
      yield page;
      const last = page[page.length - 1]!;
      afterType = last.valueType;
      afterValue = last.value;
    }
  }

  clear(): void {
    this.clearStage.run();
    this.clearNew.run();
  }
}

/**
 * The staging tables of one connection, one pair per poll that runs at the
 * same time. A streamed poll stages its batches between awaits, so another
 * poll on the connection may start meanwhile and needs tables of its own.
 */
export class PollStagePool {
  private readonly idle: PollStage[] = [];
  private created = 0;

  constructor(private readonly db: Database.Database) {}

  /** Returns empty staging tables that no other poll uses until `release`. */
  acquire(): PollStage {
    const stage = this.idle.pop() ?? new PollStage(this.db, this.created++);
    return stage;
  }

  /** Empties the tables and hands them to the next poll. */
  release(stage: PollStage): void {
    stage.clear();
    this.idle.push(stage);
  }
}
