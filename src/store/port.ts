/**
 * The storage port: everything the rest of the hub may ask of storage, in the
 * hub's own terms. Adapters live in `sqlite/` and `mongo/`; no other folder
 * imports a database driver.
 *
 * Times called "micros" are integer microseconds since the Unix epoch. They
 * stay below 2^53 until the year 2255, so a JS number represents them exactly.
 */

/**
 * Who may use a collection over TAXII. Principal names are those of the
 * principals file; `*` in a list stands for every authenticated principal.
 */
export interface CollectionAccess {
  /** Whether anyone, with or without credentials, may read. */
  public: boolean;
  /** Principals that may read. */
  read: string[];
  /** Principals that may add objects; deleting needs both read and write. */
  write: string[];
}

/** A TAXII collection as the hub keeps it. */
export interface CollectionRecord {
  /** TAXII collection id (a UUID). */
  id: string;
  /** Short name used in URLs of derived views, unique. */
  alias: string;
  title: string;
  description?: string;
  /**
   * Whether TAXII clients may read and write this collection at all; `access`
   * then says which clients. False turns the operation off for everyone.
   */
  canRead: boolean;
  canWrite: boolean;
  mediaTypes: string[];
  /**
   * Per-principal grants. Absent means `{ public: canRead, read: [], write: [] }`:
   * readable by anyone when `canRead`, writable by no one.
   */
  access?: CollectionAccess;
}

/**
 * One version of a STIX object to store. `json` is the exact text that is
 * stored and served again; the other fields are derived from it by the
 * caller (the STIX part) so that storage never parses STIX.
 */
export interface ObjectVersionInput {
  id: string;
  /** The STIX type, which starts the id as `<type>--`; the SQLite store rejects a version whose id does not. */
  type: string;
  /**
   * The version key: `modified`, else `created`, as a TAXII timestamp with
   * exactly six fractional digits (`2024-01-02T03:04:05.000000Z`), so that
   * text order is time order. Empty string for an object without either.
   */
  version: string;
  /** `spec_version` of the object, `2.1` when absent on an SDO/SRO. */
  specVersion: string;
  json: string;
}

/** A stored object version with the time it entered the collection. */
export interface StoredObject extends ObjectVersionInput {
  collectionId: string;
  /** Strictly increasing per collection. */
  dateAdded: number;
}

export type VersionSelector =
  | { kind: 'last' }
  | { kind: 'first' }
  | { kind: 'all' }
  /** An exact version key in the form of `ObjectVersionInput.version`. */
  | { kind: 'at'; version: string };

/** A query for a page of a collection, ordered by `dateAdded` then `id`. */
export interface ObjectQuery {
  collectionId: string;
  /** Strictly exclusive lower bound on `dateAdded`. */
  addedAfter?: number;
  ids?: string[];
  types?: string[];
  specVersions?: string[];
  /**
   * Which versions of each object to return; several selectors are ORed.
   * `first` and `last` pick among the versions that match the other filters
   * (ids, types, specVersions) but regardless of `addedAfter`.
   * Defaults to `[{ kind: 'last' }]`.
   */
  versions?: VersionSelector[];
  /** Resume strictly after this position (from a previous page). */
  after?: PagePosition;
  limit: number;
  /** When true, returned items carry an empty `json` (manifest queries). */
  withoutBody?: boolean;
  /**
   * When true, only versions in the highest `spec_version` stored for their
   * object match, and `first`/`last` pick among those. Spec versions compare
   * as text, which orders `2.0` before `2.1`.
   */
  latestSpecVersion?: boolean;
}

/**
 * The versions of one object to delete. The filters mean what they mean in
 * `ObjectQuery`; `versions` defaults to every version.
 */
export interface ObjectDeletion {
  collectionId: string;
  id: string;
  versions?: VersionSelector[];
  specVersions?: string[];
  latestSpecVersion?: boolean;
}

/** One object in a TAXII status resource. */
export interface StatusDetail {
  id: string;
  /** The object's version as a TAXII timestamp. */
  version: string;
  message?: string;
}

/** The outcome of one TAXII add-objects request, kept so that clients can poll it. */
export interface StatusRecord {
  /** Status id (a UUID). */
  id: string;
  collectionId: string;
  /** Name of the principal that made the request; only it may read the status. */
  principal: string;
  /** Micros at which the request arrived. */
  requestTimestamp: number;
  status: 'complete' | 'pending';
  totalCount: number;
  successes: StatusDetail[];
  failures: StatusDetail[];
  pendings: StatusDetail[];
}

export interface PagePosition {
  dateAdded: number;
  id: string;
  version: string;
}

export interface ObjectPage {
  items: StoredObject[];
  /** True when at least one more item matches after the last one returned. */
  more: boolean;
}

/**
 * The page of `queryObjects` with the JSON texts of its versions joined, as a
 * TAXII envelope lists them, and only what the envelope needs of the items.
 */
export interface JoinedObjectPage {
  /** The stored JSON texts in page order, separated by commas, as UTF-8; empty for an empty page. */
  joined: Buffer;
  /** Number of versions in the page. */
  count: number;
  /** `dateAdded` of the first version; undefined for an empty page. */
  firstDateAdded?: number;
  /** Position of the last version; undefined for an empty page. */
  last?: PagePosition;
  /** True when at least one more item matches after the last one returned. */
  more: boolean;
}

/** Result of storing object versions. */
export interface PutObjectsResult {
  /** Versions that were new and are now stored. */
  added: number;
  /** Versions already stored with the same body: nothing changed. */
  unchanged: number;
  /** Versions already stored with a different body: the stored one stays. */
  conflicts: { id: string; version: string }[];
}

/** An indicator value as seen by one source in one poll. */
export interface SightingInput {
  /** Canonical value type, e.g. `ipv4`, `ipv4-cidr`, `domain`, `url`, `sha256`. */
  valueType: string;
  /** Canonical value text. */
  value: string;
  /**
   * Deterministic STIX id of the hub indicator for this value in the
   * collection. The store replaces it with the successor id of a value
   * whose indicator was revoked (see `Store.removeSighting`).
   */
  indicatorId: string;
  /**
   * The source's attributes of the value in this poll. A poll that lists the
   * value replaces the stored attributes of its sighting, and one without
   * attributes clears them. Stores keep them in the form `normalizeAttributes`
   * returns.
   */
  attributes?: SightingAttributes;
}

/** TLP levels of sighting attributes, from the most open to the most restrictive. */
export type AttributeTlp = 'clear' | 'green' | 'amber' | 'amber+strict' | 'red';

/** The attributes one source gave one value. Every field is optional, and an absent one was not given. */
export interface SightingAttributes {
  /** STIX confidence 0-100 (an integer) that replaces the source's configured confidence for this value. */
  confidence?: number;
  /** TLP of the value; it can only make the source's configured TLP more restrictive. */
  tlp?: AttributeTlp;
  /** Labels or tags, sorted and unique. */
  labels?: string[];
  /** TCP or UDP ports 1-65535, sorted and unique. */
  ports?: number[];
  /** Malware family names, sorted and unique. */
  malwareFamilies?: string[];
  description?: string;
  /** Micros: when the source itself first saw the value, as given in the feed. */
  firstSeen?: number;
  /** Micros: when the source itself last saw the value, as given in the feed. */
  lastSeen?: number;
}

/**
 * The attributes of the active sightings of a value, merged. Labels, ports
 * and malware families are unioned, and the TLP is the most restrictive.
 * The description is that of the sighting with the latest `lastSeen`, the
 * smallest source id on a tie. `firstSeen` is the earliest and `lastSeen`
 * the latest. Confidence stays per source, because the collection's
 * confidence rule and the sources' configured confidence (for sightings
 * without one) decide the merged value, and the store stores neither.
 */
export interface IndicatorAttributes extends Omit<SightingAttributes, 'confidence'> {
  /** Confidence 0-100 by source id, for the active sightings that carry one. */
  confidenceBySource?: Record<string, number>;
}

/** A value of a collection as derived views see it. */
export interface IndicatorEntry {
  valueType: string;
  value: string;
  indicatorId: string;
  firstSeen: number;
  lastSeen: number;
  sources: string[];
  /** The merged attributes of the active sightings; absent when none has any. */
  attributes?: IndicatorAttributes;
}

/** Conditional-GET state and the last run report of one source. */
export interface SourceState {
  collectionId: string;
  sourceId: string;
  etag?: string;
  lastModified?: string;
  /** Micros of the last poll that completed without error. */
  lastSuccessAt?: number;
  /** Number of valid entries in the last complete poll. */
  lastValidCount?: number;
  /** The last run report, as a JSON-serialisable object. */
  lastReport?: Record<string, unknown>;
  /** Where an incremental source resumes, e.g. a TAXII `added_after`; kind-specific JSON. */
  cursor?: Record<string, unknown>;
}

/** Everything one poll changes, applied all at once or not at all. */
export interface PollResultInput {
  collectionId: string;
  sourceId: string;
  /** Micros at which the poll saw the values. */
  seenAt: number;
  /** The listed values. A value listed more than once keeps its first listing. */
  sightings: SightingInput[];
  /**
   * Builds the indicator object for a value that has no indicator in the
   * collection yet. Called only for those values.
   */
  buildIndicator: (sighting: SightingInput) => ObjectVersionInput;
  /** Further objects to store with the poll (identity, marking definitions). */
  extraObjects: ObjectVersionInput[];
  state: SourceState;
  /**
   * Builds every new version of a hub indicator that this poll causes,
   * `created` ones included; `buildIndicator` is then not called. Without
   * it, only new values get an indicator and no other version is written.
   */
  buildVersion?: (change: IndicatorChange) => ObjectVersionInput;
  /**
   * Set only for a complete, plausible poll: every active sighting of this
   * source that the poll did not see has missed once more, and one that has
   * now missed `withdrawAfter` consecutive complete polls is withdrawn.
   */
  missing?: { withdrawAfter: number };
}

/** The parts of a poll's input that depend on its whole list, known once its stream of sightings ended. */
export type PollCompletion = Pick<PollResultInput, 'extraObjects' | 'state' | 'missing'>;

/** Counts of a streamed poll's sightings, passed to its `complete`. */
export interface StreamedCounts {
  /** Sightings in all batches, a value listed twice counted twice. */
  listed: number;
  /** Distinct values among them, by value type and value. */
  distinct: number;
}

/**
 * A poll whose sightings arrive as a stream of batches, so that a large list
 * is never held in memory whole. The store takes each batch as it arrives,
 * then calls `complete` and applies the poll at once, as `PollResultInput`.
 * A stream or a `complete` that throws leaves the collection unchanged.
 */
export interface StreamedPollInput extends Omit<
  PollResultInput,
  'sightings' | keyof PollCompletion
> {
  sightings: AsyncIterable<readonly SightingInput[]>;
  /**
   * Called once, after the last batch and before the store changes anything.
   * The counts let a source that left duplicates to the store count them.
   */
  complete: (counts: StreamedCounts) => PollCompletion | Promise<PollCompletion>;
}

/** Tells a streamed poll input from one whose sightings are an array. */
export function isStreamedPoll(
  input: PollResultInput | StreamedPollInput,
): input is StreamedPollInput {
  return !Array.isArray(input.sightings);
}

export interface PollResultSummary {
  /** Values without an indicator before this poll. */
  created: number;
  /** Values already known that this poll saw again. */
  refreshed: number;
  objects: PutObjectsResult;
  /** Values whose every sighting had been withdrawn and that this poll listed again. */
  reactivated?: number;
  /** Sightings of this source that the poll missed but that stay active for now. */
  missed?: number;
  /** Values that this poll withdrew: their last active sighting was withdrawn. */
  withdrawn?: number;
  /** Values whose set of active sources, or the attributes of an active sighting, changed but that stay active. */
  merged?: number;
}

/** A value of a collection that has sightings but none active: its sources withdrew it, or it aged out. */
export interface InactiveIndicator {
  valueType: string;
  value: string;
  indicatorId: string;
  firstSeen: number;
  lastSeen: number;
  /** Micros of the withdrawal that left the value without an active sighting. */
  withdrawnAt: number;
  /** The reason of that withdrawal: `expired` by aging, `removed` by an analyst, else `missing`. */
  reason: WithdrawalReason;
  /** The sources whose sightings were withdrawn last, sorted. */
  sources: string[];
}

/**
 * Why a sighting stopped counting: its source stopped listing the value,
 * an aging rule expired it, or an analyst removed it (`Store.removeSighting`).
 */
export type WithdrawalReason = 'missing' | 'expired' | 'removed';

/** One source's sighting of a value, as stored. */
export interface SightingRecord {
  sourceId: string;
  indicatorId: string;
  firstSeen: number;
  lastSeen: number;
  /** Consecutive complete polls of the source that did not list the value. */
  missed: number;
  /** True for the sighting that made the hub create the indicator. */
  creator: boolean;
  /** Micros at which the sighting stopped counting; absent while it is active. */
  withdrawnAt?: number;
  withdrawalReason?: WithdrawalReason;
  /** The source's attributes of the value in the last poll that listed it. */
  attributes?: SightingAttributes;
}

/**
 * A value whose hub indicator needs a new version. A value is active while
 * at least one of its sightings is active; views list only active values.
 * - `created`: the first sighting of a value without an indicator.
 * - `merged`: the set of active sources, or the attributes of an active
 *   sighting, changed and the value stays active.
 * - `reactivated`: a value without an active sighting was listed again.
 * - `withdrawn` / `expired`: the last active sighting was withdrawn because
 *   its source stopped listing the value, or because it aged out.
 * - `revoked`: an analyst removed the value and no sighting keeps it active;
 *   this is the indicator's last version (see `Store.removeSighting`).
 */
export interface IndicatorChange {
  kind: 'created' | 'merged' | 'reactivated' | 'withdrawn' | 'expired' | 'revoked';
  valueType: string;
  value: string;
  indicatorId: string;
  /** Micros of the change: the poll's `seenAt` or the aging run's `now`. */
  at: number;
  /** Version key of the first stored version of the indicator; absent for `created`. */
  firstVersion?: string;
  /** Version key of the latest stored version of the indicator; absent for `created`. */
  lastVersion?: string;
  /** Every sighting of the value in the collection after the change, active or not. */
  sightings: SightingRecord[];
}

/** Ages the sightings of one source out: those older than `maxAgeMicros` by `basis`. */
export interface AgingRule {
  sourceId: string;
  /** Value types the rule applies to; absent means every type. */
  valueTypes?: string[];
  basis: 'first-seen' | 'last-seen';
  maxAgeMicros: number;
}

export interface ExpireInput {
  collectionId: string;
  /** Micros of the aging run; a sighting expires when `basis + maxAgeMicros <= now`. */
  now: number;
  rules: AgingRule[];
  buildVersion: (change: IndicatorChange) => ObjectVersionInput;
}

export interface ExpireSummary {
  /** Sightings that expired. */
  sightings: number;
  /** Values that expired: their last active sighting expired. */
  expired: number;
  /** Values that lost a source but stay active. */
  merged: number;
  objects: PutObjectsResult;
}

/** An analyst's removal of one source's sighting of a value; see `Store.removeSighting`. */
export interface RemoveSightingInput {
  collectionId: string;
  sourceId: string;
  valueType: string;
  value: string;
  /** Micros of the removal. */
  at: number;
  buildVersion: (change: IndicatorChange) => ObjectVersionInput;
  /**
   * Returns the id that the value's indicator takes after `revokedId` is
   * revoked. It must be deterministic, so that both stores agree.
   */
  successorId: (revokedId: string) => string;
}

export interface RemoveSightingResult {
  /**
   * - `unknown`: the source has no sighting of the value. Nothing changed.
   * - `unchanged`: only the withdrawal reason changed, because the sighting
   *   was withdrawn before and another source keeps the value active, or
   *   because the indicator has no version to revoke.
   * - `merged`: the sighting was withdrawn and another source keeps the value
   *   active, so the indicator got a `merged` version.
   * - `revoked`: no sighting keeps the value active, so the indicator got a
   *   last, revoked version and the value moved to a successor id.
   */
  outcome: 'unknown' | 'unchanged' | 'merged' | 'revoked';
  /** For `revoked`: the revoked indicator id and the successor id. */
  revocation?: Revocation;
  objects: PutObjectsResult;
}

/** A hub indicator that an analyst's removal revoked. */
export interface Revocation {
  indicatorId: string;
  /** Micros of the removal. */
  revokedAt: number;
  /** The id under which the value comes back when a source lists it again. */
  successorId: string;
}

/** A rendered derived view, stored so that serving costs a read. */
export interface RenderedView {
  collectionId: string;
  name: string;
  contentType: string;
  /** Strong entity tag including the quotes, e.g. `"b64hash"`. */
  etag: string;
  body: Buffer;
  renderedAt: number;
  entryCount: number;
  /**
   * The listed entries in a compact encoding (see `src/views/data.ts`), read
   * to serve requests with parameters. Not returned by `getView`; empty
   * when the view has none.
   */
  data: Buffer;
  /** Strong entity tag of `data`; responses derived from the data carry tags built from it. */
  dataEtag: string;
  /** The render's build log as JSON text. */
  log: string;
}

/**
 * Kinds of administration records: the definitions analysts edit through the
 * REST API (collections with their sources, views and policies; principals;
 * API keys; manual indicator entries).
 */
export type RecordKind = 'collection' | 'principal' | 'api-key' | 'manual-entry';

/**
 * A configuration or administration document. The store keeps `body` as
 * JSON text, so any key survives; it never looks inside it.
 */
export interface AdminRecord {
  kind: RecordKind;
  /**
   * Unique within its kind. Records that belong to a collection use
   * `<collectionId>/<key>`, so that `listRecords` with a prefix finds them.
   */
  id: string;
  /** 1 when created, one more after each update; what a stale update is checked against. */
  revision: number;
  /** Micros. */
  createdAt: number;
  /** Micros. */
  updatedAt: number;
  body: Record<string, unknown>;
}

export interface PutRecordOptions {
  /** Micros of the change. */
  at: number;
  /**
   * `absent`: the record must not exist yet; a number: the stored revision
   * must be this one; unset: written whatever is stored.
   */
  expectedRevision?: number | 'absent';
}

export interface RecordPage {
  /** Ordered by id (binary text order). */
  items: AdminRecord[];
  more: boolean;
}

/** One change made through the API, or by the hub on an operator's behalf. */
export interface AuditInput {
  /** Micros at which the change happened. */
  at: number;
  /** Principal name, or `system` for changes the hub makes at start (seeding). */
  actor: string;
  /** Dotted verb, e.g. `collection.create`, `source.run`, `api-key.revoke`. */
  action: string;
  targetKind: string;
  targetId: string;
  /** Collection the change belongs to, when it belongs to one. */
  collectionId?: string;
  /** Client address of the request. */
  ip?: string;
  /** What changed, as JSON-serialisable data. Never carries secrets. */
  details?: Record<string, unknown>;
}

export interface AuditRecord extends AuditInput {
  /** Strictly increasing across the store, also with several writers; the list cursor. */
  seq: number;
}

/** A query for audit records, newest first. Every filter is optional and they combine with AND. */
export interface AuditQuery {
  actor?: string;
  /** Exact action, or a prefix ending in `.` (e.g. `collection.`). */
  action?: string;
  targetKind?: string;
  targetId?: string;
  collectionId?: string;
  /** Micros, inclusive. */
  since?: number;
  /** Micros, exclusive. */
  until?: number;
  /** Resume strictly before this `seq` (from the last item of a previous page). */
  beforeSeq?: number;
  limit: number;
}

/** The storage port. Every method may reject with `StoreError`. */
export interface Store {
  /** Applies migrations or creates indexes; safe to call on every start. */
  init(): Promise<void>;
  /** Resolves when the store responds within `timeoutMs`, and rejects otherwise. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;

  upsertCollection(collection: CollectionRecord): Promise<void>;
  listCollections(): Promise<CollectionRecord[]>;
  getCollection(id: string): Promise<CollectionRecord | undefined>;
  getCollectionByAlias(alias: string): Promise<CollectionRecord | undefined>;

  /** Stores object versions; (id, version) pairs already present are kept as they are. */
  putObjects(collectionId: string, objects: ObjectVersionInput[]): Promise<PutObjectsResult>;
  queryObjects(query: ObjectQuery): Promise<ObjectPage>;
  /** Reads the page of `queryObjects` with the JSON texts joined; `withoutBody` is ignored. */
  queryJoinedObjects(query: ObjectQuery): Promise<JoinedObjectPage>;
  /** Counts all stored versions of a collection. */
  countObjects(collectionId: string): Promise<number>;
  /**
   * Deletes the versions of one object that match `deletion` and returns how
   * many were deleted. `date_added` values of deleted versions are not reused.
   */
  deleteObjectVersions(deletion: ObjectDeletion): Promise<number>;

  /** Stores a status resource, replacing one with the same id. */
  putStatus(status: StatusRecord): Promise<void>;
  getStatus(id: string): Promise<StatusRecord | undefined>;
  /** Deletes the statuses of requests that arrived before `requestedBefore` (micros); returns how many. */
  purgeStatuses(requestedBefore: number): Promise<number>;

  /**
   * Applies one poll atomically: sightings, new indicators, extra objects
   * and source state. A streamed input's batches are taken as they arrive.
   */
  applyPoll(input: PollResultInput | StreamedPollInput): Promise<PollResultSummary>;
  /**
   * Applies a complete poll whose list is the same as that of the source's
   * previous complete, plausible poll, which started at `since`: refreshes
   * in one step the active sightings of the source that had no miss (those
   * that poll listed), then applies `input`, whose `sightings` are empty, so
   * that values missing from the list are counted and withdrawn as usual.
   * `refreshed` counts the sightings refreshed. Returns undefined and
   * changes nothing when a sighting of the source was withdrawn after
   * `since` (by aging): listing its value again would reactivate it, which
   * only `applyPoll` does.
   */
  applyUnchangedPoll(
    input: PollResultInput & { since: number },
  ): Promise<PollResultSummary | undefined>;
  /**
   * Lists the active values of a collection (those with at least one active
   * sighting), optionally of some value types only, ordered by type then
   * value. `sources` names the sources of the active sightings only.
   */
  listIndicatorEntries(collectionId: string, valueTypes?: string[]): Promise<IndicatorEntry[]>;
  /** Lists the values of a collection that are not active, ordered by type then value. */
  listInactiveIndicators(collectionId: string, valueTypes?: string[]): Promise<InactiveIndicator[]>;

  getSourceState(collectionId: string, sourceId: string): Promise<SourceState | undefined>;
  /** Records the state of a poll that changed no objects (a failure or a 304). */
  putSourceState(state: SourceState): Promise<void>;

  /**
   * Returns the secret stored under `name`, storing `create()` first when
   * there is none, so that every process on the store shares it.
   */
  getOrCreateSecret(name: string, create: () => string): Promise<string>;

  /**
   * Stores a rendered view in place of the previous one. Readers see either
   * the previous render or this one, whole, never a mix, however large.
   */
  putView(view: RenderedView): Promise<void>;
  /** Returns a stored view with its body and log; `data` is left empty. */
  getView(collectionId: string, name: string): Promise<RenderedView | undefined>;
  /** Returns the etag of a stored view without reading its body. */
  getViewEtag(collectionId: string, name: string): Promise<string | undefined>;
  /**
   * Returns the etags and the entry data of a stored view, without its body;
   * with `withoutData`, `data` is empty and only the tags are read.
   */
  getViewData(
    collectionId: string,
    name: string,
    options?: { withoutData?: boolean },
  ): Promise<{ etag: string; dataEtag: string; data: Buffer } | undefined>;
  /** Returns the build log of a stored view, with its etag and render time. */
  getViewLog(
    collectionId: string,
    name: string,
  ): Promise<{ etag: string; renderedAt: number; log: string } | undefined>;

  /**
   * Withdraws, in one step, the active sightings that an aging rule expires,
   * and stores the indicator versions that this causes. Idempotent: a second
   * run at the same `now` changes nothing.
   */
  expireSightings(input: ExpireInput): Promise<ExpireSummary>;
  /** Returns every sighting of one value in a collection, active or not, by source id. */
  listSightings(collectionId: string, valueType: string, value: string): Promise<SightingRecord[]>;
  /**
   * Withdraws one source's sighting of a value because an analyst removed
   * it (reason `removed`), in one step. When no other sighting keeps the
   * value active, the indicator is revoked: it gets a last version from
   * `buildVersion` (kind `revoked`), and every sighting of the value moves to
   * the id of `successorId`. STIX forbids new versions of a revoked object,
   * so a value that a source lists again comes back under the successor id:
   * polls stage a revoked value under its newest successor, whatever id the
   * caller gave. A sighting that was withdrawn before is revoked too when
   * the value is inactive.
   */
  removeSighting(input: RemoveSightingInput): Promise<RemoveSightingResult>;
  /** Returns the revocations of one value's indicators, oldest first. */
  listRevocations(collectionId: string, valueType: string, value: string): Promise<Revocation[]>;

  /**
   * Creates or replaces a record and returns it as stored. Rejects with
   * `RecordConflictError`, changing nothing, when `expectedRevision` does
   * not hold. Concurrent writers with the same expected revision: one wins.
   */
  putRecord(
    kind: RecordKind,
    id: string,
    body: Record<string, unknown>,
    options: PutRecordOptions,
  ): Promise<AdminRecord>;
  getRecord(kind: RecordKind, id: string): Promise<AdminRecord | undefined>;
  /** Lists records of a kind by id, those whose id starts with `prefix` when given, strictly after `after`. */
  listRecords(
    kind: RecordKind,
    query: { prefix?: string; after?: string; limit: number },
  ): Promise<RecordPage>;
  /**
   * Deletes a record; false when there was none. With `expectedRevision`,
   * rejects with `RecordConflictError` when the stored revision differs.
   */
  deleteRecord(kind: RecordKind, id: string, expectedRevision?: number): Promise<boolean>;
  /** Deletes every record of a kind whose id starts with `prefix`; returns how many. */
  deleteRecords(kind: RecordKind, prefix: string): Promise<number>;

  appendAudit(entry: AuditInput): Promise<AuditRecord>;
  listAudit(query: AuditQuery): Promise<{ items: AuditRecord[]; more: boolean }>;
  /** Deletes the audit entries of changes made before `before` (micros); returns how many. */
  purgeAudit(before: number): Promise<number>;

  /**
   * Removes a collection and everything stored for it: object versions,
   * sightings, source states, views, statuses and its `manual-entry`
   * records. Its `collection` record is the caller's to delete. Safe to
   * repeat after a crash part way. Its revocations stay, so that a
   * collection created again with the same id never publishes a revoked id.
   */
  deleteCollection(id: string): Promise<void>;
}

/** A storage failure, e.g. an unreachable database. Never carries HTTP semantics. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** A record write or delete whose expected revision did not hold. */
export class RecordConflictError extends Error {
  constructor(
    readonly kind: RecordKind,
    readonly id: string,
    /** The stored revision, or undefined when no record is stored. */
    readonly currentRevision: number | undefined,
  ) {
    super(
      currentRevision === undefined
        ? `${kind} ${JSON.stringify(id)} does not exist`
        : `${kind} ${JSON.stringify(id)} is at revision ${currentRevision}`,
    );
    this.name = 'RecordConflictError';
  }
}
