import type Database from 'better-sqlite3';

import {
  StoreError,
  type JoinedObjectPage,
  type ObjectDeletion,
  type ObjectPage,
  type ObjectQuery,
  type ObjectVersionInput,
  type PutObjectsResult,
  type StoredObject,
  type VersionSelector,
} from '../port.js';

/** More versions than one object ever has; a deletion reads them in one page. */
const DELETE_SCAN_LIMIT = 1_000_000_000;

/**
 * Bits of the `objects.flags` column: the position of a version among the
 * stored versions of its object (same collection and id). `put` and `deleteVersions`
 * recompute them for every object they change, in the same transaction, and
 * migration 9 computed them for the rows stored before.
 */
export const VersionFlag = {
  /** The greatest version of the object. */
  last: 1,
  /** The smallest version of the object. */
  first: 2,
  /** Its spec_version is the highest stored for the object (text order). */
  latestSpec: 4,
  /** The greatest version among those in the highest spec_version. */
  lastOfLatestSpec: 8,
  /** The smallest version among those in the highest spec_version. */
  firstOfLatestSpec: 16,
} as const;

const EMPTY_BUFFER = Buffer.alloc(0);

/** All bits set: the flags of the only version of an object. */
const ONLY_VERSION_FLAGS = Object.values(VersionFlag).reduce((all, flag) => all | flag, 0);

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
    [string, string, string, string, string, number, string, number]
  >;
  private readonly readJson: Database.Statement<[string, string, string], { json: string }>;
  private readonly hasAnyVersion: Database.Statement<[string, string], { one: number }>;
  private readonly readVersions: Database.Statement<[string, string], VersionRow>;
  private readonly writeFlags: Database.Statement<[number, number]>;
  private readonly readPosition: Database.Statement<
    [string, number],
    { id: string; version: string }
  >;
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
      `INSERT INTO objects (collection_id, id, version, type, spec_version, date_added, json, flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (collection_id, id, version) DO NOTHING`,
    );
    this.readJson = db.prepare(
      'SELECT json FROM objects WHERE collection_id = ? AND id = ? AND version = ?',
    );
    this.hasAnyVersion = db.prepare(
      'SELECT 1 AS one FROM objects WHERE collection_id = ? AND id = ? LIMIT 1',
    );
    // Without INDEXED BY, SQLite preferred scanning the whole collection in
    // objects_page, which covers these columns, to seeking the object in the
    // index of the UNIQUE (collection_id, id, version) constraint.
    this.readVersions = db.prepare(
      `SELECT rowid AS rowId, version, spec_version AS specVersion, flags
       FROM objects INDEXED BY sqlite_autoindex_objects_1 WHERE collection_id = ? AND id = ?`,
    );
    this.writeFlags = db.prepare('UPDATE objects SET flags = ? WHERE rowid = ?');
    this.readPosition = db.prepare(
      'SELECT id, version FROM objects WHERE collection_id = ? AND date_added = ?',
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
   * collection, and updates the version flags of their objects. Rejects the
   * whole call when a version's id does not start with its type. Call inside
   * a write transaction.
   */
  put(collectionId: string, objects: readonly ObjectVersionInput[]): PutObjectsResult {
    const result: PutObjectsResult = { added: 0, unchanged: 0, conflicts: [] };
    if (objects.length === 0) return result;
    for (const object of objects) checkTypePrefix(object);

    let next = this.nextDateAdded(collectionId);
    let assigned = 0;

    for (const object of objects) {
      const others = this.readVersions.all(collectionId, object.id);
      if (others.some((other) => other.version === object.version)) {
        const stored = this.readJson.get(collectionId, object.id, object.version);
        if (stored?.json === object.json) result.unchanged++;
        else result.conflicts.push({ id: object.id, version: object.version });
        continue;
      }

      // Most versions are the first of their object, which gets every flag.
      let flags = ONLY_VERSION_FLAGS;
      if (others.length > 0) {
        const computed = versionFlags([...others, object]);
        flags = computed[others.length] as number;
        this.updateFlags(others, computed);
      }
      this.insertVersion(collectionId, object, next, flags);
      result.added++;
      assigned = next;
      next++;
    }

    if (assigned !== 0) this.writeClock.run(collectionId, assigned);
    return result;
  }

  /**
   * Stores versions as `put` does, for objects that the caller found to have
   * no version in the collection earlier in the same transaction, without
   * reading each object's versions first. Each is the only version of its
   * object and gets every flag. Call inside that write transaction.
   */
  putFirstVersions(collectionId: string, objects: readonly ObjectVersionInput[]): PutObjectsResult {
    const result: PutObjectsResult = { added: 0, unchanged: 0, conflicts: [] };
    if (objects.length === 0) return result;
    for (const object of objects) checkTypePrefix(object);

    let next = this.nextDateAdded(collectionId);
    for (const object of objects) {
      if (this.insertVersion(collectionId, object, next, ONLY_VERSION_FLAGS) === 0) {
        throw new StoreError(
          `Version ${object.version} of ${object.id} is already stored in collection ${collectionId}, but the poll found no version of it. The poll was rolled back: run it again`,
        );
      }
      next++;
    }
    result.added = objects.length;
    this.writeClock.run(collectionId, next - 1);
    return result;
  }

  query(query: ObjectQuery): ObjectPage {
    const shape = shapeOf(query);
    const statement = this.pageStatement(`rows ${shape.key}`, shape.rowsSql, true);

    // Rows come back as arrays in the column order of PAGE_COLUMNS, because
    // building the objects here read 100,000 indicators about 1.5 times as
    // fast as the driver's named rows did.
    const rows = statement.all(shape.params(query)) as PageRow[];
    const more = rows.length > query.limit;
    if (more) rows.length = query.limit;
    const items = new Array<StoredObject>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as PageRow;
      items[i] = {
        collectionId: query.collectionId,
        id: row[0],
        type: row[1],
        version: row[2],
        specVersion: row[3],
        dateAdded: row[4],
        json: row[5],
      };
    }
    return { items, more };
  }

  /**
   * Reads the page of `query` with the JSON texts joined by SQLite. The
   * texts reach JavaScript once, as one buffer, so no string is built per
   * row. Call inside a read transaction, so that the three statements see
   * one snapshot.
   */
  queryJoined(query: ObjectQuery): JoinedObjectPage {
    const shape = shapeOf({ ...query, withoutBody: false });
    const statement = this.pageStatement(`joined ${shape.key}`, shape.joinedSql, false);
    const row = statement.get(shape.params(query)) as JoinedRow;
    if (row.count === 0 || row.joined === null) {
      return { joined: EMPTY_BUFFER, count: 0, more: false };
    }

    // date_added is unique in a collection, so it finds the last row.
    const lastRow = this.readPosition.get(query.collectionId, row.lastDateAdded);
    if (lastRow === undefined) {
      throw new StoreError(
        `Object at date_added ${row.lastDateAdded} in collection ${query.collectionId} was not found while its page was read; retry the request`,
      );
    }
    const last = { dateAdded: row.lastDateAdded, id: lastRow.id, version: lastRow.version };

    // A page shorter than the limit ends the scan; a full one may be followed by more.
    let more = false;
    if (row.count >= query.limit) {
      more = this.query({ ...query, after: last, limit: 1, withoutBody: true }).items.length > 0;
    }
    return { joined: row.joined, count: row.count, firstDateAdded: row.firstDateAdded, last, more };
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
    if (deleted > 0) {
      const left = this.readVersions.all(deletion.collectionId, deletion.id);
      this.updateFlags(left, versionFlags(left));
    }
    return deleted;
  }

  /** Returns the query plan of a page query, or of its joined form, for tests and tuning. */
  explain(query: ObjectQuery, joined = false): string[] {
    const shape = shapeOf(query);
    const sql = joined ? shape.joinedSql : shape.rowsSql;
    const rows = this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(shape.params(query)) as {
      detail: string;
    }[];
    return rows.map((row) => row.detail);
  }

  /** Inserts one version unless its (collection, id, version) is stored, and returns the number of rows inserted. */
  private insertVersion(
    collectionId: string,
    object: ObjectVersionInput,
    dateAdded: number,
    flags: number,
  ): number {
    return this.insert.run(
      collectionId,
      object.id,
      object.version,
      object.type,
      object.specVersion,
      dateAdded,
      object.json,
      flags,
    ).changes;
  }

  /** Returns the `date_added` of the next version stored in the collection: now, or just after the last one handed out. */
  private nextDateAdded(collectionId: string): number {
    const last = this.readClock.get(collectionId)?.last ?? 0;
    return Math.max(nowMicros(), last + 1);
  }

  /** Writes `flags[i]` to `rows[i]` where it differs from the stored flags. */
  private updateFlags(rows: readonly VersionRow[], flags: readonly number[]): void {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as VersionRow;
      if (flags[i] !== row.flags) this.writeFlags.run(flags[i] as number, row.rowId);
    }
  }

  /** Returns the statement of `sql`, prepared once per key. */
  private pageStatement(key: string, sql: string, raw: boolean): Database.Statement {
    let statement = this.pageStatements.get(key);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      if (raw) statement.raw(true);
      this.pageStatements.set(key, statement);
    }
    return statement;
  }
}

/**
 * Computes the VersionFlag bits of each of the versions of one object. Text
 * comparison in JavaScript orders ASCII, as versions and spec versions are,
 * the way SQLite's BINARY collation does.
 */
function versionFlags(versions: readonly { version: string; specVersion: string }[]): number[] {
  let last = '';
  let first: string | undefined;
  let topSpec = '';
  for (const { version, specVersion } of versions) {
    if (version > last) last = version;
    if (first === undefined || version < first) first = version;
    if (specVersion > topSpec) topSpec = specVersion;
  }
  let lastInTopSpec = '';
  let firstInTopSpec: string | undefined;
  for (const { version, specVersion } of versions) {
    if (specVersion !== topSpec) continue;
    if (version > lastInTopSpec) lastInTopSpec = version;
    if (firstInTopSpec === undefined || version < firstInTopSpec) firstInTopSpec = version;
  }

  return versions.map(({ version, specVersion }) => {
    let flags = 0;
    if (version === last) flags |= VersionFlag.last;
    if (version === first) flags |= VersionFlag.first;
    if (specVersion === topSpec) {
      flags |= VersionFlag.latestSpec;
      if (version === lastInTopSpec) flags |= VersionFlag.lastOfLatestSpec;
      if (version === firstInTopSpec) flags |= VersionFlag.firstOfLatestSpec;
    }
    return flags;
  });
}

/**
 * Rejects a version whose id does not start with `<type>--`, as STIX ids do.
 * The page queries rely on it: all versions of an object share one type.
 */
function checkTypePrefix(object: ObjectVersionInput): void {
  if (!object.id.startsWith(`${object.type}--`)) {
    throw new StoreError(
      `Object ${object.id} has type ${JSON.stringify(object.type)}, but a STIX id starts with the type of its object; ` +
        'set type to the part of the id before "--"',
    );
  }
}

interface QueryShape {
  /** Identifies the SQL texts; queries with the same key share their statements. */
  key: string;
  /** Selects up to `limit + 1` rows of PAGE_COLUMNS and the JSON text. */
  rowsSql: string;
  /** Selects one JoinedRow for the first `limit` rows. */
  joinedSql: string;
  params(query: ObjectQuery): Record<string, unknown>;
}

/** The columns of a page row before its JSON text, in PageRow order. */
const PAGE_COLUMNS = 'o.id, o.type, o.version, o.spec_version, o.date_added';

/** id, type, version, spec_version, date_added and the JSON text ('' without body). */
type PageRow = [string, string, string, string, number, string];

interface VersionRow {
  rowId: number;
  version: string;
  specVersion: string;
  flags: number;
}

interface JoinedRow {
  count: number;
  /** NULL when no row matched. */
  joined: Buffer | null;
  firstDateAdded: number;
  lastDateAdded: number;
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

  // Without a spec_version filter, the flags select first and last: every
  // version of an object has the type that starts its id (see
  // checkTypePrefix), so a type filter keeps all of an object's versions or none.
  const flagged = !hasSpecs;
  const hasFlag = (flag: number) => `(o.flags & ${flag}) <> 0`;

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
        flagged
          ? hasFlag(latestSpec ? VersionFlag.lastOfLatestSpec : VersionFlag.last)
          : `NOT EXISTS (SELECT 1 FROM objects v WHERE v.collection_id = o.collection_id
               AND v.id = o.id AND v.version > o.version ${otherFilters})`,
      );
    }
    if (kinds.has('first')) {
      versionTerms.push(
        flagged
          ? hasFlag(latestSpec ? VersionFlag.firstOfLatestSpec : VersionFlag.first)
          : `NOT EXISTS (SELECT 1 FROM objects v WHERE v.collection_id = o.collection_id
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
  if (latestSpec) where.push(hasFlag(VersionFlag.latestSpec));
  if (versionTerms.length > 0) where.push(`(${versionTerms.join(' OR ')})`);

  const filtered = `FROM objects o
    WHERE ${where.join(' AND ')}
    ORDER BY o.date_added, o.id, o.version`;
  const rowsSql = `SELECT ${PAGE_COLUMNS}, ${withoutBody ? `''` : 'o.json'}
    ${filtered}
    LIMIT :pageSize + 1`;
  // NOTE: group_concat joins in the order its input arrives, which is the
  // subquery's ORDER BY: SQLite runs a subquery with LIMIT as a co-routine.
  // SQLite documents that order as arbitrary unless group_concat has its own
  // ORDER BY, but that ORDER BY sorts the whole page again, which halved the
  // rate of this query in a micro-benchmark. The store contract tests of
  // queryJoinedObjects check the order.
  const joinedSql = `SELECT count(*) AS count, CAST(group_concat(json, ',') AS BLOB) AS joined,
      min(date_added) AS firstDateAdded, max(date_added) AS lastDateAdded
    FROM (SELECT o.json AS json, o.date_added AS date_added
      ${filtered}
      LIMIT :pageSize)`;

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
    rowsSql,
    joinedSql,
    params(q) {
      const params: Record<string, unknown> = { collection: q.collectionId, pageSize: q.limit };
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
