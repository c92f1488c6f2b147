/**
 * Administration records, the audit log and the removal of a collection on
 * SQLite. Every write runs in a `BEGIN IMMEDIATE` transaction, so a revision
 * check and the write that depends on it see no other writer in between.
 */
import type Database from 'better-sqlite3';

import {
  RecordConflictError,
  StoreError,
  type AdminRecord,
  type AuditInput,
  type AuditQuery,
  type AuditRecord,
  type PutRecordOptions,
  type RecordKind,
  type RecordPage,
} from '../port.js';

type RecordRow = {
  revision: number;
  createdAt: number;
  updatedAt: number;
  body: string;
};

type ListedRecordRow = RecordRow & { id: string };

type AuditRow = {
  seq: number;
  at: number;
  actor: string;
  action: string;
  targetKind: string;
  targetId: string;
  collectionId: string | null;
  ip: string | null;
  details: string | null;
};

const RECORD_COLUMNS = 'revision, created_at AS createdAt, updated_at AS updatedAt, body' as const;

const AUDIT_COLUMNS = `seq, at, actor, action, target_kind AS targetKind, target_id AS targetId,
  collection_id AS collectionId, ip, details`;

/** Statements and transactions on `records` and `audit`, built once per connection. */
export class RecordTables {
  private readonly readRecord: Database.Statement<[string, string], RecordRow>;
  private readonly insertRecord: Database.Statement<
    [string, string, number, number, number, string]
  >;
  private readonly updateRecord: Database.Statement<[number, number, string, string, string]>;
  private readonly removeRecord: Database.Statement<[string, string]>;
  private readonly insertAudit: Database.Statement<
    [number, string, string, string, string, string | null, string | null, string | null]
  >;
  /** Statements whose text depends on the filters, compiled once per text. */
  private readonly dynamicStatements = new Map<string, Database.Statement>();

  readonly put: Database.Transaction<
    (
      kind: RecordKind,
      id: string,
      body: Record<string, unknown>,
      options: PutRecordOptions,
    ) => AdminRecord
  >;
  readonly delete: Database.Transaction<
    (kind: RecordKind, id: string, expectedRevision?: number) => boolean
  >;
  readonly deleteByPrefix: Database.Transaction<(kind: RecordKind, prefix: string) => number>;
  readonly deleteCollection: Database.Transaction<(collectionId: string) => void>;

  constructor(private readonly db: Database.Database) {
    this.readRecord = db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE kind = ? AND id = ?`);
    this.insertRecord = db.prepare(
      `INSERT INTO records (kind, id, revision, created_at, updated_at, body)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    this.updateRecord = db.prepare(
      `UPDATE records SET revision = ?, updated_at = ?, body = ? WHERE kind = ? AND id = ?`,
    );
    this.removeRecord = db.prepare('DELETE FROM records WHERE kind = ? AND id = ?');
    this.insertAudit = db.prepare(
      `INSERT INTO audit (at, actor, action, target_kind, target_id, collection_id, ip, details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );

    this.put = db.transaction((kind, id, body, options) =>
      this.putInTransaction(kind, id, body, options),
    );
    this.delete = db.transaction((kind, id, expectedRevision) =>
      this.deleteInTransaction(kind, id, expectedRevision),
    );
    this.deleteByPrefix = db.transaction((kind, prefix) => {
      const range = prefixConditions('id', prefix);
      const where = ['kind = ?', ...range.sql].join(' AND ');
      return this.statement(`DELETE FROM records WHERE ${where}`).run(kind, ...range.params)
        .changes;
    });
    this.deleteCollection = db.transaction((collectionId: string) =>
      this.deleteCollectionInTransaction(collectionId),
    );
  }

  get(kind: RecordKind, id: string): AdminRecord | undefined {
    const row = this.readRecord.get(kind, id);
    return row === undefined ? undefined : toRecord(kind, id, row);
  }

  list(kind: RecordKind, query: { prefix?: string; after?: string; limit: number }): RecordPage {
    const conditions = ['kind = ?'];
    const params: (string | number)[] = [kind];
    if (query.prefix !== undefined) {
      const range = prefixConditions('id', query.prefix);
      conditions.push(...range.sql);
      params.push(...range.params);
    }
    if (query.after !== undefined) {
      conditions.push('id > ?');
      params.push(query.after);
    }
    const sql = `SELECT id, ${RECORD_COLUMNS} FROM records
      WHERE ${conditions.join(' AND ')}
      ORDER BY id LIMIT ?`;
    const rows = this.statement(sql).all(...params, query.limit + 1) as ListedRecordRow[];

    const more = rows.length > query.limit;
    if (more) rows.length = query.limit;
    return { items: rows.map((row) => toRecord(kind, row.id, row)), more };
  }

  appendAudit(entry: AuditInput): AuditRecord {
    checkMicros('audit time', entry.at);
    const details = entry.details === undefined ? null : JSON.stringify(entry.details);
    const info = this.insertAudit.run(
      entry.at,
      entry.actor,
      entry.action,
      entry.targetKind,
      entry.targetId,
      entry.collectionId ?? null,
      entry.ip ?? null,
      details,
    );
    return toAudit({
      ...entry,
      seq: Number(info.lastInsertRowid),
      collectionId: entry.collectionId ?? null,
      ip: entry.ip ?? null,
      details,
    });
  }

  purgeAudit(before: number): number {
    checkMicros('audit purge time', before);
    return this.statement('DELETE FROM audit WHERE at < ?').run(before).changes;
  }

  listAudit(query: AuditQuery): { items: AuditRecord[]; more: boolean } {
    const conditions: string[] = [];
    const params: (string | number)[] = [];
    const equal = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      conditions.push(`${column} = ?`);
      params.push(value);
    };
    equal('actor', query.actor);
    equal('target_kind', query.targetKind);
    equal('target_id', query.targetId);
    equal('collection_id', query.collectionId);

    if (query.action !== undefined && query.action.endsWith('.')) {
      const range = prefixConditions('action', query.action);
      conditions.push(...range.sql);
      params.push(...range.params);
    } else {
      equal('action', query.action);
    }
    if (query.since !== undefined) {
      conditions.push('at >= ?');
      params.push(query.since);
    }
    if (query.until !== undefined) {
      conditions.push('at < ?');
      params.push(query.until);
    }
    if (query.beforeSeq !== undefined) {
      conditions.push('seq < ?');
      params.push(query.beforeSeq);
    }

    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const sql = `SELECT ${AUDIT_COLUMNS} FROM audit ${where} ORDER BY seq DESC LIMIT ?`;
    const rows = this.statement(sql).all(...params, query.limit + 1) as AuditRow[];

    const more = rows.length > query.limit;
    if (more) rows.length = query.limit;
    return { items: rows.map(toAudit), more };
  }

  private putInTransaction(
    kind: RecordKind,
    id: string,
    body: Record<string, unknown>,
    options: PutRecordOptions,
  ): AdminRecord {
    checkRecordId(kind, id);
    checkMicros('record time', options.at);
    const expected = options.expectedRevision;
    if (typeof expected === 'number') checkRevision(expected);
    const json = bodyText(kind, id, body);

    const stored = this.readRecord.get(kind, id);
    if (expected === 'absent' && stored !== undefined) {
      throw new RecordConflictError(kind, id, stored.revision);
    }
    if (typeof expected === 'number' && stored?.revision !== expected) {
      throw new RecordConflictError(kind, id, stored?.revision);
    }

    if (stored === undefined) {
      this.insertRecord.run(kind, id, 1, options.at, options.at, json);
      return toRecord(kind, id, {
        revision: 1,
        createdAt: options.at,
        updatedAt: options.at,
        body: json,
      });
    }
    const revision = stored.revision + 1;
    this.updateRecord.run(revision, options.at, json, kind, id);
    return toRecord(kind, id, { ...stored, revision, updatedAt: options.at, body: json });
  }

  private deleteInTransaction(kind: RecordKind, id: string, expectedRevision?: number): boolean {
    if (expectedRevision !== undefined) checkRevision(expectedRevision);
    const stored = this.readRecord.get(kind, id);
    if (expectedRevision !== undefined && stored?.revision !== expectedRevision) {
      throw new RecordConflictError(kind, id, stored?.revision);
    }
    if (stored === undefined) return false;
    this.removeRecord.run(kind, id);
    return true;
  }

  /**
   * Deletes everything stored for a collection, its row last. The per-collection
   * `date_added` clock stays, so a collection created again with the same id
   * never hands out a date_added that a client has already seen. So do the
   * revocations, so that it never publishes an id that a client saw revoked.
   */
  private deleteCollectionInTransaction(collectionId: string): void {
    for (const table of ['objects', 'sightings', 'source_state', 'views']) {
      this.statement(`DELETE FROM ${table} WHERE collection_id = ?`).run(collectionId);
    }
    // Statuses keep the collection id only inside their JSON body.
    this.statement(`DELETE FROM taxii_statuses WHERE json_extract(body, '$.collectionId') = ?`).run(
      collectionId,
    );
    this.deleteByPrefix('manual-entry', `${collectionId}/`);
    this.statement('DELETE FROM collections WHERE id = ?').run(collectionId);
  }

  private statement(sql: string): Database.Statement {
    let statement = this.dynamicStatements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.dynamicStatements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * Returns the conditions that select the values of `column` starting with
 * `prefix`, as a range so that they seek on an index. None for an empty prefix.
 */
function prefixConditions(column: string, prefix: string): { sql: string[]; params: string[] } {
  if (prefix === '') return { sql: [], params: [] };
  const upper = prefixUpperBound(prefix);
  if (upper === undefined) return { sql: [`${column} >= ?`], params: [prefix] };
  return { sql: [`${column} >= ?`, `${column} < ?`], params: [prefix, upper] };
}

/**
 * Returns the smallest string that sorts after every string starting with
 * `prefix` in code point order (which is SQLite's BINARY order of UTF-8
 * text), or undefined when there is none (`prefix` is empty or only U+10FFFF).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = (points.pop() as string).codePointAt(0) as number;
    if (last < 0x10ffff) {
      // Surrogate code points have no UTF-8 encoding, so the next one after U+D7FF is U+E000.
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function toRecord(kind: RecordKind, id: string, row: RecordRow): AdminRecord {
  return {
    kind,
    id,
    revision: row.revision,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    body: JSON.parse(row.body) as Record<string, unknown>,
  };
}

function toAudit(row: AuditRow): AuditRecord {
  const record: AuditRecord = {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    targetKind: row.targetKind,
    targetId: row.targetId,
  };
  if (row.collectionId !== null) record.collectionId = row.collectionId;
  if (row.ip !== null) record.ip = row.ip;
  if (row.details !== null) record.details = JSON.parse(row.details) as Record<string, unknown>;
  return record;
}

/** Returns the JSON text of a record body, rejecting anything but a JSON object. */
function bodyText(kind: RecordKind, id: string, body: Record<string, unknown>): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new StoreError(`Invalid body of ${kind} ${JSON.stringify(id)}: expected a JSON object`);
  }
  try {
    return JSON.stringify(body);
  } catch (error) {
    throw new StoreError(
      `Invalid body of ${kind} ${JSON.stringify(id)}: it cannot be written as JSON ` +
        `(${error instanceof Error ? error.message : String(error)})`,
      { cause: error },
    );
  }
}

function checkRecordId(kind: RecordKind, id: string): void {
  if (typeof id !== 'string' || id === '') {
    throw new StoreError(`Invalid ${kind} id ${JSON.stringify(id)}: expected a non-empty string`);
  }
}

function checkRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 1) {
    throw new StoreError(
      `Invalid expected revision ${revision}: expected an integer of at least 1`,
    );
  }
}

function checkMicros(what: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new StoreError(`Invalid ${what} ${value}: expected integer microseconds since the epoch`);
  }
}
