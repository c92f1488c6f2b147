import type Database from 'better-sqlite3';

import { StoreError } from '../port.js';

/**
 * The schema as an ordered list of migrations. Migration `n` (1-based) moves
 * the file from `PRAGMA user_version = n - 1` to `n`. Append new migrations;
 * never edit one that has shipped.
 *
 * Times are integer microseconds since the Unix epoch unless a column name
 * ends in `_ms` (milliseconds, as Agenda's dates are).
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE collections (
    id TEXT PRIMARY KEY,
    alias TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT,
    can_read INTEGER NOT NULL,
    can_write INTEGER NOT NULL,
    media_types TEXT NOT NULL
  ) STRICT;

  -- The last date_added handed out per collection. It only moves forward, so
  -- date_added stays strictly increasing even when the clock steps back.
  CREATE TABLE collection_clock (
    collection_id TEXT PRIMARY KEY,
    last_date_added INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE objects (
    collection_id TEXT NOT NULL,
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    date_added INTEGER NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (collection_id, id, version),
    UNIQUE (collection_id, date_added)
  ) STRICT;

  -- Covers the page scan in date_added order, so filters and manifest pages
  -- read no table rows.
  CREATE INDEX objects_page ON objects (collection_id, date_added, id, version, type, spec_version);

  CREATE TABLE sightings (
    collection_id TEXT NOT NULL,
    value_type TEXT NOT NULL,
    value TEXT NOT NULL,
    source_id TEXT NOT NULL,
    indicator_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (collection_id, value_type, value, source_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE source_state (
    collection_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_success_at INTEGER,
    last_valid_count INTEGER,
    last_report TEXT,
    PRIMARY KEY (collection_id, source_id)
  ) STRICT;

  CREATE TABLE views (
    collection_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    body BLOB NOT NULL,
    rendered_at INTEGER NOT NULL,
    entry_count INTEGER NOT NULL,
    PRIMARY KEY (collection_id, name)
  ) STRICT;

  CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  -- Agenda jobs. Dates are milliseconds since the Unix epoch. \`doc\` holds
  -- all job parameters as JSON; the columns copy the ones that job lookups
  -- filter or sort on.
  CREATE TABLE agenda_jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    priority INTEGER NOT NULL,
    next_run_at_ms INTEGER,
    locked_at_ms INTEGER,
    disabled INTEGER NOT NULL DEFAULT 0,
    unique_key TEXT,
    doc TEXT NOT NULL
  ) STRICT;

  CREATE INDEX agenda_jobs_next ON agenda_jobs (name, next_run_at_ms, priority);
  CREATE UNIQUE INDEX agenda_jobs_unique ON agenda_jobs (unique_key) WHERE unique_key IS NOT NULL;
  CREATE UNIQUE INDEX agenda_jobs_single ON agenda_jobs (name) WHERE type = 'single';
  `,
  // 2: where an incremental source (TAXII added_after, MISP timestamps) resumes, as JSON.
  `
  ALTER TABLE source_state ADD COLUMN cursor TEXT;
  `,
  // 3: per-principal TAXII access as JSON (NULL: public read when can_read,
  // no writers), and the status resources of TAXII add-objects requests.
  `
  ALTER TABLE collections ADD COLUMN access TEXT;

  CREATE TABLE taxii_statuses (
    id TEXT PRIMARY KEY,
    request_timestamp INTEGER NOT NULL,
    body TEXT NOT NULL
  ) STRICT;

  CREATE INDEX taxii_statuses_age ON taxii_statuses (request_timestamp);
  `,
  // 4: sighting life cycle. `missed` counts consecutive complete polls of the
  // source without the value; a withdrawn sighting (withdrawn_at set, reason
  // 'missing' or 'expired') no longer keeps its value active. `creator` marks
  // the sighting that made the hub create the indicator.
  `
  ALTER TABLE sightings ADD COLUMN missed INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE sightings ADD COLUMN withdrawn_at INTEGER;
  ALTER TABLE sightings ADD COLUMN withdrawal_reason TEXT;
  ALTER TABLE sightings ADD COLUMN creator INTEGER NOT NULL DEFAULT 0;
  `,
  // 5: the per-object subqueries of page queries (highest spec_version of an
  // object, then its first or last version within that spec_version) seek on
  // this index. Without it SQLite scanned the whole collection for each row
  // of a page, so a page of 1,000 took about a second at 10,000 objects.
  `
  CREATE INDEX objects_spec ON objects (collection_id, id, spec_version, version);
  `,

  // 6: views keep the entries they list, for requests with parameters, and
  // the build log of their render.
  `
  ALTER TABLE views ADD COLUMN data BLOB NOT NULL DEFAULT x'';
  ALTER TABLE views ADD COLUMN data_etag TEXT NOT NULL DEFAULT '""';
  ALTER TABLE views ADD COLUMN log TEXT NOT NULL DEFAULT '{}';
  `,

  // 7: what the source said about the value in the last poll that listed it
  // (confidence, TLP, labels, ports, malware families, description, its own
  // first and last seen), as the JSON text of `encodeAttributes`; NULL when
  // it said nothing.
  `
  ALTER TABLE sightings ADD COLUMN attributes TEXT;
  `,

  // 8: administration records (collections, principals, API keys, manual
  // entries) with a revision for conditional writes, and the audit log.
  // AUTOINCREMENT keeps audit seq values from being reused even after the
  // newest entries are deleted. The audit indexes end in seq, so each one
  // serves its filter together with the newest-first order.
  `
  CREATE TABLE records (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
  ) STRICT;

  CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    collection_id TEXT,
    ip TEXT,
    details TEXT
  ) STRICT;

  CREATE INDEX audit_actor ON audit (actor, seq);
  CREATE INDEX audit_action ON audit (action, seq);
  CREATE INDEX audit_target ON audit (target_kind, target_id, seq);
  CREATE INDEX audit_collection ON audit (collection_id, seq);
  CREATE INDEX audit_at ON audit (at);
  `,

  // 9: where each version stands among the versions of its object, as the
  // bits of VersionFlag in objects.ts: 1 last, 2 first, 4 in the highest
  // spec_version, 8 last and 16 first within that spec_version. Page queries
  // test a bit instead of running a subquery per row. The page index gains
  // the column, so manifest pages still read no table rows.
  `
  ALTER TABLE objects ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;

  UPDATE objects SET flags = ranked.flags
  FROM (
    SELECT row_id,
      (version = last) * 1
        + (version = first) * 2
        + (spec_version = top_spec) * 4
        + (spec_version = top_spec AND version = last_in_spec) * 8
        + (spec_version = top_spec AND version = first_in_spec) * 16
        AS flags
    FROM (
      SELECT rowid AS row_id, version, spec_version,
        max(version) OVER object AS last,
        min(version) OVER object AS first,
        max(spec_version) OVER object AS top_spec,
        max(version) OVER spec AS last_in_spec,
        min(version) OVER spec AS first_in_spec
      FROM objects
      WINDOW object AS (PARTITION BY collection_id, id),
        spec AS (PARTITION BY collection_id, id, spec_version)
    )
  ) AS ranked
  WHERE objects.rowid = ranked.row_id;

  DROP INDEX objects_page;
  CREATE INDEX objects_page
    ON objects (collection_id, date_added, id, version, type, spec_version, flags);
  `,
  // 11: since migration 10, page queries read the flags instead of seeking
  // an object's spec versions, and an object's versions are read through
  // the unique (collection_id, id, version) index. objects_spec only cost
  // every insert a fourth index: dropping it made a fresh poll of 1,000,000
  // values about 7% faster and the file about 9% smaller.
  `
  DROP INDEX objects_spec;
  `,
  // 12: hub indicators revoked because an analyst removed their value. The
  // value's sightings then carry successor_id. A value revoked again has a
  // row per revoked id, and its current id is the successor that is not
  // revoked itself. Polls look a listed value up by (value_type, value).
  `
  CREATE TABLE revocations (
    collection_id TEXT NOT NULL,
    indicator_id TEXT NOT NULL,
    value_type TEXT NOT NULL,
    value TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    successor_id TEXT NOT NULL,
    PRIMARY KEY (collection_id, indicator_id)
  ) STRICT, WITHOUT ROWID;

  CREATE INDEX revocations_value ON revocations (collection_id, value_type, value);
  CREATE INDEX revocations_successor ON revocations (collection_id, successor_id);
  `,
];

/**
 * Brings the file up to the latest schema. Each migration runs in its own
 * write transaction and re-reads the version inside it, so several processes
 * opening the same file at once apply each step exactly once.
 */
export function migrate(db: Database.Database, file: string): void {
  const known = MIGRATIONS.length;
  const found = readVersion(db);
  if (found > known) {
    throw new StoreError(
      `SQLite file ${file} has schema version ${found}, but this build knows versions up to ${known}; ` +
        'run a newer build of feedhub or point it at another data file',
    );
  }

  for (let target = found + 1; target <= known; target++) {
    const step = db.transaction(() => {
      const current = readVersion(db);
      if (current >= target) return;
      db.exec(MIGRATIONS[target - 1] as string);
      db.pragma(`user_version = ${target}`);
    });
    step.immediate();
  }
}

function readVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}
