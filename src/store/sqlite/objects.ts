import type Database from 'better-sqlite3';

import type {
  ObjectDeletion,
  ObjectPage,
  ObjectQuery,
  ObjectVersionInput,
  PutObjectsResult,
  StoredObject,
  VersionSelector,
} from '../port.js';

/** More versions than one object ever has; a deletion reads them in one page. */
const DELETE_SCAN_LIMIT = 1_000_000_000;

/** Current wall-clock time in integer microseconds since the Unix epoch. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * Statements on the `objects` table. Every method is synchronous and must run
 * inside a write transaction where it writes, because `date_added` is read
 * from and written to `collection_clock` in the same transaction.
 */
export class ObjectTable {
  private readonly readClock: Database.Statement<[string], { last: number }>;
  private readonly writeClock: Database.Statement<[string, number]>;
  private readonly insert: Database.Statement<
    [string, string, string, string, string, number, string]
  >;
  private readonly readJson: Database.Statement<[string, string, string], { json: string }>;
  private readonly hasAnyVersion: Database.Statement<[string, string], { one: number }>;
  private readonly count: Database.Statement<[string], { n: number }>;
  private readonly deleteOne: Database.Statement<[string, string, string]>;
  /** Page queries compiled once per shape (see `shapeOf`). */
  private readonly pageStatements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {
    this.readClock = db.prepare(
      'SELECT last_date_added AS last FROM collection_clock WHERE collection_id = ?',
    );
    this.writeClock = db.prepare(
      `INSERT INTO collection_clock (collection_id, last_date_added) VALUES (?, ?)
       ON CONFLICT (collection_id) DO UPDATE SET last_date_added = excluded.last_date_added`,
    );
    this.insert = db.prepare(
      `INSERT INTO objects (collection_id, id, version, type, spec_version, date_added, json)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (collection_id, id, version) DO NOTHING`,
    );
    this.readJson = db.prepare(
      'SELECT json FROM objects WHERE collection_id = ? AND id = ? AND version = ?',
    );
    this.hasAnyVersion = db.prepare(
      'SELECT 1 AS one FROM objects WHERE collection_id = ? AND id = ? LIMIT 1',
    );
    this.count = db.prepare('SELECT count(*) AS n FROM objects WHERE collection_id = ?');
    this.deleteOne = db.prepare(
      'DELETE FROM objects WHERE collection_id = ? AND id = ? AND version = ?',
    );
  }

  /** Whether any version of `id` is stored in the collection. */
  exists(collectionId: string, id: string): boolean {
    return this.hasAnyVersion.get(collectionId, id) !== undefined;
  }

  countIn(collectionId: string): number {
    return this.count.get(collectionId)?.n ?? 0;
  }

  /**
   * Stores the versions that are new, each with the next `date_added` of the
   * collection. Call inside a write transaction.
   */
  put(collectionId: string, objects: readonly ObjectVersionInput[]): PutObjectsResult {
    const result: PutObjectsResult = { added: 0, unchanged: 0, conflicts: [] };
    if (objects.length === 0) return result;

    const last = this.readClock.get(collectionId)?.last ?? 0;
    let next = Math.max(nowMicros(), last + 1);
    let assigned = 0;

    for (const object of objects) {
      const info = this.insert.run(
        collectionId,
        object.id,
        object.version,
        object.type,
        object.specVersion,
        next,
        object.json,
      );
      if (info.changes === 1) {
        result.added++;
        assigned = next;
        next++;
        continue;
      }

      const stored = this.readJson.get(collectionId, object.id, object.version);
      if (stored?.json === object.json) result.unchanged++;
      else result.conflicts.push({ id: object.id, version: object.version });
    }

    if (assigned !== 0) this.writeClock.run(collectionId, assigned);
    return result;
  }

  query(query: ObjectQuery): ObjectPage {
    const shape = shapeOf(query);
    let statement = this.pageStatements.get(shape.key);
    if (statement === undefined) {
      statement = this.db.prepare(shape.sql);
      this.pageStatements.set(shape.key, statement);
    }

    const rows = statement.all(shape.params(query)) as StoredObject[];
    const more = rows.length > query.limit;
    if (more) rows.length = query.limit;
    return { items: rows, more };
  }

  /**
   * Deletes the versions of one object that `deletion` selects and returns
   * how many were deleted. Call inside a write transaction.
   */
  deleteVersions(deletion: ObjectDeletion): number {
    const query: ObjectQuery = {
      collectionId: deletion.collectionId,
      ids: [deletion.id],
      versions: deletion.versions ?? [{ kind: 'all' }],
      limit: DELETE_SCAN_LIMIT,
      withoutBody: true,
    };
    if (deletion.specVersions !== undefined) query.specVersions = deletion.specVersions;
    if (deletion.latestSpecVersion === true) query.latestSpecVersion = true;

    let deleted = 0;
    for (const item of this.query(query).items) {
      deleted += this.deleteOne.run(deletion.collectionId, item.id, item.version).changes;
    }
    return deleted;
  }

  /** Returns the query plan of a page query, for tests and tuning. */
  explain(query: ObjectQuery): string[] {
    const shape = shapeOf(query);
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${shape.sql}`).all(shape.params(query)) as {
      detail: string;
    }[];
    return rows.map((row) => row.detail);
  }
}

interface QueryShape {
  /** Identifies the SQL text; queries with the same key share one statement. */
  key: string;
  sql: string;
  params(query: ObjectQuery): Record<string, unknown>;
}

/**
 * Builds the SQL of a page query. Lists (ids, types, spec versions) are bound
 * as one JSON array each and read with `json_each`, so the SQL text depends
 * only on which filters are present, not on how many values they hold.
 */
function shapeOf(query: ObjectQuery): QueryShape {
  const selectors: VersionSelector[] =
    query.versions && query.versions.length > 0 ? query.versions : [{ kind: 'last' }];
  const kinds = new Set(selectors.map((selector) => selector.kind));
  const atVersions = selectors.flatMap((selector) =>
    selector.kind === 'at' ? [selector.version] : [],
  );

  const hasIds = query.ids !== undefined;
  const hasTypes = query.types !== undefined;
  const hasSpecs = query.specVersions !== undefined;
  const hasAddedAfter = query.addedAfter !== undefined;
  const hasAfter = query.after !== undefined;
  const withoutBody = query.withoutBody === true;
  const latestSpec = query.latestSpecVersion === true;

  // A filter on the other versions of the same object, for first/last: they
  // count only if they match the same type and spec_version filters.
  const otherFilters = [
    hasTypes ? 'AND v.type IN (SELECT value FROM json_each(:types))' : '',
    hasSpecs ? 'AND v.spec_version IN (SELECT value FROM json_each(:specs))' : '',
    // o is in the highest spec version of its object, so the others must be too.
    latestSpec ? 'AND v.spec_version = o.spec_version' : '',
  ].join(' ');

  const versionTerms: string[] = [];
  if (!kinds.has('all')) {
    if (kinds.has('last')) {
      versionTerms.push(
        `NOT EXISTS (SELECT 1 FROM objects v WHERE v.collection_id = o.collection_id
           AND v.id = o.id AND v.version > o.version ${otherFilters})`,
      );
    }
    if (kinds.has('first')) {
      versionTerms.push(
        `NOT EXISTS (SELECT 1 FROM objects v WHERE v.collection_id = o.collection_id
           AND v.id = o.id AND v.version < o.version ${otherFilters})`,
      );
    }
    if (atVersions.length > 0) {
      versionTerms.push('o.version IN (SELECT value FROM json_each(:at))');
    }
  }

  const where = ['o.collection_id = :collection'];
  if (hasAddedAfter) where.push('o.date_added > :addedAfter');
  if (hasAfter) {
    where.push('o.date_added >= :afterDate');
    where.push('(o.date_added, o.id, o.version) > (:afterDate, :afterId, :afterVersion)');
  }
  if (hasIds) where.push('o.id IN (SELECT value FROM json_each(:ids))');
  if (hasTypes) where.push('o.type IN (SELECT value FROM json_each(:types))');
  if (hasSpecs) where.push('o.spec_version IN (SELECT value FROM json_each(:specs))');
  if (latestSpec) {
    where.push(
      `NOT EXISTS (SELECT 1 FROM objects s WHERE s.collection_id = o.collection_id
         AND s.id = o.id AND s.spec_version > o.spec_version)`,
    );
  }
  if (versionTerms.length > 0) where.push(`(${versionTerms.join(' OR ')})`);

  const body = withoutBody ? `'' AS json` : 'o.json AS json';
  const sql = `SELECT o.collection_id AS collectionId, o.id AS id, o.type AS type,
      o.version AS version, o.spec_version AS specVersion, o.date_added AS dateAdded, ${body}
    FROM objects o
    WHERE ${where.join(' AND ')}
    ORDER BY o.date_added, o.id, o.version
    LIMIT :limit`;

  const key = [
    hasAddedAfter,
    hasAfter,
    hasIds,
    hasTypes,
    hasSpecs,
    withoutBody,
    kinds.has('all'),
    kinds.has('last'),
    kinds.has('first'),
    atVersions.length > 0,
    latestSpec,
  ]
    .map((flag) => (flag ? '1' : '0'))
    .join('');

  return {
    key,
    sql,
    params(q) {
      const params: Record<string, unknown> = { collection: q.collectionId, limit: q.limit + 1 };
      if (hasAddedAfter) params.addedAfter = q.addedAfter;
      if (q.after !== undefined) {
        params.afterDate = q.after.dateAdded;
        params.afterId = q.after.id;
        params.afterVersion = q.after.version;
      }
      if (hasIds) params.ids = JSON.stringify(q.ids);
      if (hasTypes) params.types = JSON.stringify(q.types);
      if (hasSpecs) params.specs = JSON.stringify(q.specVersions);
      if (atVersions.length > 0) params.at = JSON.stringify(atVersions);
      return params;
    },
  };
}
